"""A test server (a fake LLM, a fake Home Assistant) in a process of its own, on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from services.llm_server import free_loopback_port

START_BOUND_S = 30.0


@contextmanager
def server_process(module: str, probe: str) -> Iterator[str]:
    """Run ``python -m module --port PORT`` until the block ends; yields its base URL once
    ``GET probe`` answers. It is killed at the end, not asked: a request stuck in a "hang"
    mode keeps uvicorn from shutting down gracefully."""
    port = free_loopback_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port)], stdin=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_BOUND_S
        while not _answers(f"{url}{probe}"):
            if process.poll() is not None:
                pytest.fail(f"the test server {module} exited with {process.returncode}")
            if time.monotonic() > deadline:
                pytest.fail(f"the test server {module} did not start in {START_BOUND_S:.0f} s")
            time.sleep(0.2)
        yield url
    finally:
        process.kill()
        process.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0, trust_env=False).is_success
    except httpx.HTTPError:
        return False
