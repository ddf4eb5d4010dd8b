"""``jetvoice serve`` as a child process: what the end-to-end tests and the benchmark drive.

Running the real console script (rather than the app in-process) means the tests exercise the
same start-up, model loading, LLM server management and shutdown a user gets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from services.llm_server import free_loopback_port


class AgentProcessError(RuntimeError):
    """The agent did not start, or exited unexpectedly; the message carries its log tail."""


class AgentProcess:
    """Start ``jetvoice serve`` on a free loopback port and wait until ``/health`` is ready."""

    def __init__(self, extra_args: Sequence[str] = (), *, port: int = 0) -> None:
        self.port = port or free_loopback_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._args = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file = Path(tempfile.mkstemp(prefix="jetvoice-serve-", suffix=".log")[1])
        self.ready_secs: float | None = None
        self.exit_code: int | None = None

    @property
    def log_path(self) -> Path:
        """Where the agent's stdout and stderr go."""
        return self._log_file

    def log_tail(self, lines: int = 40) -> str:
        """The end of the agent's log, for failure messages."""
        text = self._log_file.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def start(self, ready_timeout: float = 300.0) -> float:
        """Launch and block until ready; returns seconds from launch to ready (cold start)."""
        command = [
            sys.executable,
            "-m",
            "pipeline.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self._args,
        ]
        started = time.monotonic()
        with self._log_file.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() - started < ready_timeout:
                if self._process.poll() is not None:
                    raise AgentProcessError(
                        f"jetvoice serve exited with {self._process.returncode}:\n"
                        + self.log_tail()
                    )
                try:
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        self.ready_secs = time.monotonic() - started
                        return self.ready_secs
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        self.stop()
        raise AgentProcessError(f"not ready after {ready_timeout:.0f} s:\n{self.log_tail()}")

    def health(self) -> dict[str, object]:
        """The parsed ``/health`` answer."""
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            body: dict[str, object] = client.get(f"{self.base_url}/health").json()
            return body

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT (what Ctrl-C sends), then SIGKILL after ``timeout``. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return self.exit_code
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.exit_code = process.returncode
        return self.exit_code

    def __enter__(self) -> AgentProcess:
        """Start with the default timeout."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the agent and remove its log."""
        self.stop()
        if os.environ.get("JETVOICE_KEEP_LOGS") != "1":
            self._log_file.unlink(missing_ok=True)
