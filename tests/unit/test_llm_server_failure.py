"""A managed LLM server that dies on its first real request is named as dead, with its exit
signal and log, not reported as a bare "Server disconnected" (a llama.cpp build using a CPU
feature the machine does not enable crashes exactly there)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

import services.llm_server as llm_server_module
from pipeline.config import LLMConfig
from services.llm_server import LLMEndpoint, LLMServer, free_loopback_port
from tests.support.processes import running, still_running

# Answers GET /v1/models like a server that loaded its model; crashes on the first POST.
_CRASHING_SERVER = textwrap.dedent(
    """
    import os, signal, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def do_POST(self):
            print("about to use a CPU feature this machine lacks", flush=True)
            os.kill(os.getpid(), signal.SIGSEGV)

        def log_message(self, *args):
            pass

    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
    """
)


@pytest.mark.asyncio
async def test_a_server_crashing_on_a_request_is_reported_with_its_signal_and_log() -> None:
    port = free_loopback_port()
    server = LLMServer(LLMConfig(server="llamacpp", start_timeout_secs=20))
    # The real start() would build a llama.cpp command line; this runs the crashing stand-in.
    server._command = [sys.executable, "-c", _CRASHING_SERVER, str(port)]
    server._endpoint = LLMEndpoint(f"http://127.0.0.1:{port}/v1", "local", "local")
    try:
        await server._spawn()
        await server._wait_ready(20)
        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            with pytest.raises(httpx.HTTPError) as failed:
                await client.post(f"{server.endpoint.base_url}/chat/completions", json={})
        error = await server.failure(f"the request failed ({failed.value!r})", grace_secs=5)
        message = str(error)
        assert "died (signal SIGSEGV)" in message
        assert "about to use a CPU feature" in message
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_a_failure_of_a_live_server_says_only_what_failed() -> None:
    server = LLMServer(LLMConfig(server="external", base_url="http://127.0.0.1:9/v1"))
    error = await server.failure("the request timed out")
    assert str(error) == "the request timed out"


def test_a_picked_port_is_never_one_the_process_will_bind_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The kernel hands out the agent's own (not yet bound) web port first: it is skipped.
    handed = iter([43111, 43111, 43112])

    class Kernel:
        def __init__(self, *_: object) -> None:
            self.port = next(handed)

        def __enter__(self) -> Kernel:
            return self

        def __exit__(self, *_: object) -> None:
            pass

        def bind(self, _: object) -> None:
            pass

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(llm_server_module.socket, "socket", Kernel)
    assert free_loopback_port(avoid={43111}) == 43112


# Like vLLM: the API server starts its engine in a child process, which outlives a killed parent.
# The server itself is the stand-in above (no POST is sent to it here).
_SERVER_WITH_ENGINE = (
    textwrap.dedent(
        """
        import subprocess, sys
        engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(sys.argv[2], "a") as pids:
            pids.write(f"{engine.pid}\\n")
        """
    )
    + _CRASHING_SERVER
)


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_a_killed_servers_children_go_with_it_and_on_close(tmp_path: Path) -> None:
    port = free_loopback_port()
    pids = tmp_path / "engines"
    server = LLMServer(LLMConfig(server="vllm", start_timeout_secs=20))
    server._command = [sys.executable, "-c", _SERVER_WITH_ENGINE, str(port), str(pids)]
    server._endpoint = LLMEndpoint(f"http://127.0.0.1:{port}/v1", "local", "local")
    supervisor: asyncio.Task[None] | None = None
    try:
        await server._spawn()
        await server._wait_ready(20)
        supervisor = asyncio.create_task(server.supervise())
        first = server._process
        assert first is not None
        (engine,) = map(int, pids.read_text().split())
        assert running(engine)
        os.kill(first.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while server.restarts == 0 or not server.serving:
            assert time.monotonic() < deadline, "the server was not restarted"
            await asyncio.sleep(0.1)
        assert not still_running({engine}), "the killed server's engine process lived on"
        second_engine = int(pids.read_text().split()[-1])
        assert second_engine != engine and running(second_engine)
    finally:
        await server.close()
        if supervisor is not None:
            await asyncio.wait_for(supervisor, 10)
    assert not still_running({second_engine}), "close() left the server's engine process running"
