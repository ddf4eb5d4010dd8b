"""Closing the runtime: nothing may start an LLM server after it is closed."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.runtime import unloaded_runtime


@pytest.mark.asyncio
async def test_the_supervisor_is_stopped_before_the_llm_server_closes() -> None:
    runtime = unloaded_runtime()
    events: list[str] = []

    async def supervise() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            events.append("supervisor stopped")
            raise

    async def close_server() -> None:
        events.append("server closed")

    runtime._supervisor = asyncio.create_task(supervise())
    await asyncio.sleep(0)
    runtime.llm_server.close = close_server  # type: ignore[method-assign]
    await runtime.close()
    assert events == ["supervisor stopped", "server closed"]
