"""``jetvoice serve`` as a child process: what the end-to-end tests and the benchmark drive.

Running the real console script (rather than the app in-process) means the tests exercise the
same start-up, model loading, LLM server management and shutdown a user gets. Each agent gets
its own state directory (certificates, pairing token), a temporary one unless given, so a test
never reads or writes the user's.
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from pipeline.server.certs import cert_paths
from pipeline.server.pairing import token_path
from services.llm_server import free_loopback_port


class AgentProcessError(RuntimeError):
    """The agent did not start, or exited unexpectedly; the message carries its log tail."""


class AgentProcess:
    """Start ``jetvoice serve`` on a free loopback port and wait until ``/health`` is ready."""

    def __init__(
        self,
        extra_args: Sequence[str] = (),
        *,
        port: int = 0,
        tls: bool = False,
        state_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        unset_env: Sequence[str] = (),
        wrapper: Sequence[str] = (),
    ) -> None:
        """``tls`` adds ``--tls`` and checks the served certificate against the agent's CA;
        ``env`` adds variables to the agent's environment (e.g. the network audit's) and
        ``unset_env`` removes some. ``wrapper`` is a command the agent runs under (``strace -f
        ...``): the agent is then the wrapper's child, and signals go to it, not the wrapper."""
        self.port = port or free_loopback_port()
        self.tls = tls
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._owns_state_dir = state_dir is None
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="jetvoice-state-"))
        self._args = [*extra_args, *(["--tls"] if tls else [])]
        self._env = dict(env or {})
        self._unset_env = frozenset(unset_env)
        self._wrapper = list(wrapper)
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file = Path(tempfile.mkstemp(prefix="jetvoice-serve-", suffix=".log")[1])
        self.ready_secs: float | None = None
        self.exit_code: int | None = None

    @property
    def pid(self) -> int | None:
        """The agent's process id while it runs (under a wrapper: the wrapper's child)."""
        if self._process is None:
            return None
        return _child_of(self._process.pid) if self._wrapper else self._process.pid

    @property
    def log_path(self) -> Path:
        """Where the agent's stdout and stderr go."""
        return self._log_file

    @property
    def ca_file(self) -> Path:
        """The local CA that signs the agent's certificate (exists once the agent started)."""
        return cert_paths(self.state_dir).ca_cert

    @property
    def token(self) -> str:
        """The agent's pairing token (exists once the agent started)."""
        return token_path(self.state_dir).read_text(encoding="ascii").strip()

    def verify(self) -> ssl.SSLContext | bool:
        """What an HTTP client should verify the agent's certificate with."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.tls else True

    def log_tail(self, lines: int = 40) -> str:
        """The end of the agent's log, for failure messages."""
        text = self._log_file.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def start(self, ready_timeout: float = 300.0) -> float:
        """Launch and block until ready; returns seconds from launch to ready (cold start)."""
        command = [
            *self._wrapper,
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
        env = {**os.environ, **self._env, "JETVOICE_STATE_DIR": str(self.state_dir)}
        for name in self._unset_env:
            env.pop(name, None)
        with self._log_file.open("wb") as log:
            # A session of its own, as a served agent has (a terminal, a service manager). With
            # the kernel's autogroup scheduling that keeps the agent's priorities its own: its
            # models run below its event loop (pipeline.ops.compute_priority), and in the
            # starter's session they also ran below every busy process there (a test client
            # transcribing a reply, a second test worker, Chromium): on two cores one piece of
            # speech took over 15 s. Its own session gets a fair share as a whole and ranks its
            # threads inside it. A Ctrl-C to the starter's terminal no longer reaches it; the
            # starter stops it (``stop``, also on an interrupted ``start``).
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        client: httpx.Client | None = None
        try:
            while time.monotonic() - started < ready_timeout:
                if self._process.poll() is not None:
                    message = (
                        f"jetvoice serve exited with {self._process.returncode}:\n"
                        + self.log_tail()
                    )
                    self.stop()  # collects the exit code, removes a temporary state dir
                    raise AgentProcessError(message)
                # With TLS, the CA appears only once the agent has made it.
                if client is None and (not self.tls or self.ca_file.exists()):
                    client = httpx.Client(timeout=2.0, trust_env=False, verify=self.verify())
                try:
                    if client and client.get(f"{self.base_url}/health").status_code == 200:
                        self.ready_secs = time.monotonic() - started
                        return self.ready_secs
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        except BaseException:
            # Interrupted while waiting (Ctrl-C, a test's timeout): the caller never gets an
            # agent to stop, so it must not outlive this call with its models and LLM server.
            self.stop()
            raise
        finally:
            if client is not None:
                client.close()
        self.stop()
        raise AgentProcessError(f"not ready after {ready_timeout:.0f} s:\n{self.log_tail()}")

    def health(self) -> dict[str, object]:
        """The parsed ``/health`` answer."""
        with httpx.Client(timeout=5.0, trust_env=False, verify=self.verify()) as client:
            body: dict[str, object] = client.get(f"{self.base_url}/health").json()
            return body

    def stop(self, timeout: float = 15.0, sig: signal.Signals = signal.SIGINT) -> int | None:
        """SIGINT (what Ctrl-C sends; or ``sig``), then SIGKILL after ``timeout``. Idempotent.

        A temporary state directory goes with the agent.
        """
        process, self._process = self._process, None
        if process is None:
            return self.exit_code
        if process.poll() is None:
            agent = _child_of(process.pid) if self._wrapper else process.pid
            if agent is None:  # the wrapper has no child (left): nothing else to stop
                process.send_signal(sig)
            else:
                os.kill(agent, sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.exit_code = process.returncode
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)
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


def _child_of(pid: int) -> int | None:
    """The oldest child process of ``pid`` (the command a wrapper started), or None."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command's name: state, parent pid, ..., start time (field 22, index 19).
        if int(fields[1]) == pid:
            children.append((int(fields[19]), int(entry.name)))
    return min(children)[1] if children else None
