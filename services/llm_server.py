"""Management of the local OpenAI-compatible LLM server: llama.cpp on CPU, vLLM on GPUs.

The server runs as a child process on loopback so a crash in native inference code cannot
take the voice front end down with it, and so the same client talks to llama.cpp, vLLM or an
external box on the LAN.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import httpx
from loguru import logger

from pipeline.config import LLMConfig


class LLMServerError(RuntimeError):
    """The LLM server could not be started or did not become ready."""


@dataclass(frozen=True)
class LLMEndpoint:
    """Where the pipeline's LLM client connects."""

    base_url: str
    model: str
    api_key: str


def free_loopback_port(avoid: Collection[int] = ()) -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1, not one of ``avoid``.

    The port is free now, not reserved: ``avoid`` names the ports this process will bind
    later. The agent's own web port is one: picked the same way by whoever started it, it is
    not bound until the LLM server is up, and the kernel handed that very port to the LLM
    server once (the agent then failed with "address already in use").
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the child if this process dies without cleaning up."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def llama_cpp_command(config: LLMConfig, port: int) -> list[str]:
    """Command line for llama-cpp-python's OpenAI-compatible server."""
    if config.model_path is None:
        raise LLMServerError("the llama.cpp server needs a GGUF model path")
    cores = os.cpu_count() or 1
    # Half the cores for prompt processing and for generation alike, so the agent's own audio
    # work and Kokoro keep the rest. llama.cpp's threads meet at a barrier after every step:
    # with as many threads as cores, any other runnable thread stalls them all. On the 2-core
    # machine with other work running, time to first token was a median 363 ms with one prompt
    # thread and 520 ms with two (up to seconds with a lower priority added).
    threads = config.threads or max(1, cores // 2)
    batch_threads = threads
    return [
        sys.executable,
        # Also installs the network audit when it is on (JETVOICE_NETWORK_AUDIT).
        "-m",
        "pipeline.ops.audited_run",
        "--nice",
        str(config.cpu_nice),
        "llama_cpp.server",
        "--model",
        str(config.model_path),
        "--model_alias",
        config.model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(config.context_tokens),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(batch_threads),
        # llama.cpp reuses the KV cache for the longest common prompt prefix (the system prompt
        # and the conversation so far), which is what keeps time to first token flat.
        "--verbose",
        "False",
        # By default a request arriving while another generates ends the running stream with
        # a clean [DONE] after whatever it had: with two sessions talking at once, one of them
        # got an empty answer and silence, and no error to apologise for. Queue instead.
        "--interrupt_requests",
        "False",
        *config.extra_server_args,
    ]


def vllm_command(config: LLMConfig, port: int) -> list[str]:
    """Command line for vLLM's OpenAI-compatible server with the flags the profiles rely on."""
    if config.model_path is None:
        raise LLMServerError("the vLLM server needs a model directory")
    return [
        "vllm",
        "serve",
        str(config.model_path),
        "--served-model-name",
        config.model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        str(config.context_tokens),
        "--enable-prefix-caching",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        *config.extra_server_args,
    ]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


class LLMServer:
    """Owns the LLM server process (or just the address of an external one)."""

    def __init__(self, config: LLMConfig, avoid_ports: Collection[int] = ()) -> None:
        """``avoid_ports``: ports of this process, bound later, that the server must not take."""
        self._config = config
        self._avoid_ports = frozenset(avoid_ports)
        self._process: asyncio.subprocess.Process | None = None
        self._log_path: Path | None = None
        self._closed = False
        self._endpoint: LLMEndpoint | None = None
        self._command: list[str] = []
        self.restarts = 0
        # Serving requests: started, or back after a restart (and warmed, when asked to).
        self.serving = False

    @property
    def endpoint(self) -> LLMEndpoint:
        """The endpoint; valid after :meth:`start`."""
        if self._endpoint is None:
            raise LLMServerError("LLM server not started")
        return self._endpoint

    @property
    def running(self) -> bool:
        """Whether a managed process is alive (always True for an external server)."""
        if self._config.server == "external":
            return True
        return self._process is not None and self._process.returncode is None

    async def start(self) -> LLMEndpoint:
        """Start the server if managed, then wait until it answers ``GET /models``."""
        config = self._config
        if config.server == "external":
            if not config.base_url:
                raise LLMServerError("an external LLM server needs --llm-url")
            self._endpoint = LLMEndpoint(config.base_url.rstrip("/"), config.model, config.api_key)
        else:
            port = config.port or free_loopback_port(self._avoid_ports)
            if config.server == "llamacpp":
                self._command = llama_cpp_command(config, port)
            else:
                self._command = vllm_command(config, port)
            logger.info(f"Starting {config.server} LLM server on 127.0.0.1:{port}")
            await self._spawn()
            self._endpoint = LLMEndpoint(f"http://127.0.0.1:{port}/v1", config.model, "local")
        await self._wait_ready(config.start_timeout_secs)
        self.serving = True
        return self._endpoint

    async def _spawn(self) -> None:
        log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix=f"jetvoice-{self._config.server}-", suffix=".log", delete=False
        )
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
        self._log_path = Path(log.name)
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        # llama-cpp-python's server lets $HOST, $PORT and $CONFIG_FILE override its flags: a
        # HOST=0.0.0.0 in the user's environment would put the LLM on the LAN.
        for name in ("HOST", "PORT", "CONFIG_FILE"):
            env.pop(name, None)
        self._process = await asyncio.create_subprocess_exec(
            *self._command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent,  # only calls prctl: safe before exec
            # A process group of its own (the same session, so the same CPU scheduling group):
            # vLLM runs its engine in child processes, and when its API server is killed they
            # live on, holding the model's memory (21 GB of KV cache on the CPU build) and a
            # spinning core, and the restarted server finds no memory left. The whole group is
            # swept when the server exits or is closed.
            process_group=0,
        )
        log.close()

    def _sweep(self, process: asyncio.subprocess.Process) -> None:
        """SIGKILL whatever is left of ``process``'s group (the server's own children)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    async def supervise(self, on_back: Callable[[], Awaitable[None]] | None = None) -> None:
        """Restart a managed server whenever it dies, until :meth:`close`.

        The endpoint keeps its port, so sessions' clients reconnect by themselves; turns that
        hit the gap get the spoken apology. ``on_back`` (a warm-up) runs after each restart,
        before :attr:`serving` says the server is back.
        """
        if self._config.server == "external":
            return
        backoff = 1.0
        while not self._closed and self._process is not None:
            code = await self._process.wait()
            if self._closed:
                return
            self._sweep(self._process)
            self.serving = False
            self.restarts += 1
            logger.error(
                f"the {self._config.server} LLM server exited with {code}; restarting in "
                f"{backoff:.0f} s\n{self.log_tail(10)}"
            )
            await asyncio.sleep(backoff)
            if self._closed:
                return
            try:
                await self._spawn()
                await self._wait_ready(self._config.start_timeout_secs)
                if on_back is not None:
                    try:
                        await on_back()
                    except LLMServerError as error:
                        # Turns will find out; a server that died in it is restarted next.
                        logger.warning(f"the restarted LLM server's warm-up failed: {error}")
                self.serving = self.running
                logger.info(f"the {self._config.server} LLM server is back")
                backoff = 1.0
            except LLMServerError as error:
                logger.error(f"restarting the LLM server failed: {error}")
                backoff = min(backoff * 2, 30.0)

    async def _wait_ready(self, limit_secs: float) -> None:
        assert self._endpoint is not None
        deadline = time.monotonic() + limit_secs
        url = f"{self._endpoint.base_url}/models"
        last_error = "no answer yet"
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self._config.server != "external" and not self.running:
                    raise LLMServerError(
                        f"the {self._config.server} LLM server exited during start-up:\n"
                        + self.log_tail()
                    )
                try:
                    response = await client.get(url)
                    if response.status_code == 200:
                        return
                    last_error = f"HTTP {response.status_code}"
                except httpx.HTTPError as error:
                    last_error = type(error).__name__
                await asyncio.sleep(0.25)
        raise LLMServerError(
            f"the LLM server at {self._endpoint.base_url} was not ready after {limit_secs:.0f} s "
            f"({last_error})\n{self.log_tail()}"
        )

    async def failure(self, what: str, grace_secs: float = 1.0) -> LLMServerError:
        """An error for a request that failed: with the managed server's exit status and log
        when it died under it (waiting up to ``grace_secs`` for the exit to be collected)."""
        process = self._process
        if self._config.server == "external" or process is None:
            return LLMServerError(what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.wait()), grace_secs)
        code = process.returncode
        if code is None:
            return LLMServerError(what)
        status = f"exit status {code}" if code >= 0 else f"signal {_signal_name(-code)}"
        return LLMServerError(
            f"{what}: the {self._config.server} LLM server died ({status})\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the managed server's log, for error messages."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    async def close(self) -> None:
        """Stop a managed server: SIGTERM, then SIGKILL after 10 s. Idempotent."""
        if self._closed:
            return
        self._closed = True
        process, self._process = self._process, None
        if process is not None:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout=10.0)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            self._sweep(process)
        if self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
