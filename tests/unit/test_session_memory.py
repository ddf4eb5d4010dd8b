"""RELIABILITY row 13: a session's pipeline is garbage by the time its memory is given back.

A pipeline is a web of reference cycles, freed by the collection the session manager runs when
the session ends, just before ``malloc_trim``. The party of a joinable session reaches the
pipeline (``Party.open`` keeps the session's ``on_empty``, and its mixer is a processor). While
the manager still held the party at that collection, it freed nothing: the trim after it gave
nothing back, and the soak found the last session's pipeline (and its unsent audio) in the
agent at every sample, collected only by some later automatic collection.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from pipeline.config import ServerConfig
from pipeline.runtime import AgentRuntime
from pipeline.sessions import manager as session_manager
from pipeline.sessions.manager import SessionManager
from pipeline.sessions.party import Party
from tests.support.runtime import unloaded_runtime
from tests.support.sdp import chromium_offer


class _Pipeline:
    """Stands in for a session's pipeline: a reference cycle, as processors linked both ways."""

    def __init__(self) -> None:
        self.cycle = self

    async def end(self) -> None:
        return None


class _Connection:
    pc_id = "pc-1"

    async def disconnect(self) -> None:
        return None


class _Handler:
    """pipecat's request handler as far as a new peer goes: it calls back, then answers."""

    peer_count = 0

    async def handle_web_request(
        self, request: Any, webrtc_connection_callback: Callable[[Any], Awaitable[None]]
    ) -> dict[str, str]:
        await webrtc_connection_callback(_Connection())
        return {"sdp": "v=0\r\n", "type": "answer", "pc_id": _Connection.pc_id}

    async def handle_patch_request(self, request: Any) -> None:
        return None

    async def close(self) -> None:
        return None


@pytest.mark.asyncio
async def test_a_sessions_pipeline_is_garbage_before_its_memory_is_given_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipelines: list[weakref.ref[_Pipeline]] = []
    alive_at_trim: list[bool] = []
    hang_up = asyncio.Event()
    ended = asyncio.Event()

    def start(
        _connection: Any, _runtime: AgentRuntime, _session_id: str, party: Party
    ) -> Coroutine[Any, Any, None]:
        pipeline = _Pipeline()
        party.open(out_sample_rate=24000, on_empty=pipeline.end)
        pipelines.append(weakref.ref(pipeline))

        async def run() -> None:
            await hang_up.wait()

        return run()

    def trim() -> bool:
        alive_at_trim.append(any(ref() is not None for ref in pipelines))
        ended.set()
        return True

    monkeypatch.setattr(session_manager, "release_free_memory", trim)
    manager = SessionManager(unloaded_runtime(ServerConfig()), _Handler(), start_session=start)
    try:
        await manager.offer({"sdp": chromium_offer(), "type": "offer"})
        assert manager.active == 1
        hang_up.set()
        await asyncio.wait_for(ended.wait(), 5)
    finally:
        await manager.close()
    assert len(pipelines) == 1
    assert alive_at_trim == [False], "the session's pipeline was still reachable at the trim"
