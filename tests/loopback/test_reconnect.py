"""RELIABILITY row 9: a peer reconnecting with its pc_id keeps exactly one live pipeline, the
replaced peer connection is garbage-collected, and the task count stays flat.

The real app and session manager (pipecat's request handler underneath) serve on 127.0.0.1,
with an echo pipeline per session instead of the models. A LoopbackCaller connects; then, twenty
times, the current caller vanishes (no goodbye, as on a network change) and a new one offers
with the old pc_id and ``restart_pc``, as pipecat's browser client does when it reconnects.
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import numpy as np
import pytest
from aiortc import RTCPeerConnection

from pipeline.bench.client.audio_clip import load_wav
from pipeline.bench.client.loopback_caller import LoopbackCaller
from pipeline.config import ServerConfig
from pipeline.server.app import create_app
from pipeline.sessions.manager import PeerRequestHandler, SessionManager
from pipeline.webrtc.ice_policy import loopback_only_ice
from tests.loopback.echo_bot import echo_session, serve_on_loopback
from tests.support.conversation import FIXTURES
from tests.support.runtime import unloaded_runtime

CYCLES = 20
# pipecat's audio_out_write_timeout_secs: a write stuck on a replaced connection fails after it.
WRITE_TIMEOUT_S = 10.0
# Tasks that come and go with no leak (an HTTP keep-alive connection, a closing handler).
TASK_SLACK = 3


async def _settled_task_count() -> int:
    """The number of tasks once the last reconnect's short-lived ones have finished."""
    counts = []
    for _ in range(5):
        await asyncio.sleep(0.1)
        counts.append(len(asyncio.all_tasks()))
    return min(counts)


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_twenty_reconnects_keep_one_pipeline_and_free_the_old_peers(
    network_audit: list[str],
) -> None:
    # One session at most: a reconnect that counted as a second session would be refused. The
    # offer rate limit (its own tests cover it) would refuse a fast machine's 21st offer.
    runtime = unloaded_runtime(ServerConfig(max_sessions=1, offer_burst=CYCLES + 1))
    handler = PeerRequestHandler(ice_servers=[])
    sessions = SessionManager(runtime, handler, start_session=echo_session)
    app = create_app(runtime, sessions=sessions)
    callers: list[LoopbackCaller] = []

    async def reconnects(base_url: str) -> None:
        caller = LoopbackCaller(base_url)
        callers.append(caller)
        await caller.connect()
        first_reconnect = time.monotonic()
        server_pcs: list[weakref.ref[RTCPeerConnection]] = []
        task_counts: list[int] = []
        for cycle in range(CYCLES):
            assert caller.pc_id is not None
            connection = handler.peer(caller.pc_id)
            assert connection is not None, f"cycle {cycle}: the peer is not held"
            server_pcs.append(weakref.ref(connection.pc))
            await caller.vanish()
            again = LoopbackCaller(base_url, resume_pc_id=caller.pc_id)
            callers.append(again)
            await again.connect()
            await caller.close()
            caller = again
            assert sessions.active == 1, f"cycle {cycle}: {sessions.active} pipelines"
            assert handler.peer_count == 1, f"cycle {cycle}: {handler.peer_count} peers"
            task_counts.append(await _settled_task_count())

        # The last peer still works end to end, after the bot's audio writes to replaced
        # connections would have timed out (10 s) had they been left hanging: it hears itself.
        await asyncio.sleep(max(0.0, first_reconnect + WRITE_TIMEOUT_S + 1 - time.monotonic()))
        clip, rate = load_wav(FIXTURES / "hello_world.wav")
        started = time.monotonic()
        await caller.say(np.asarray(clip), rate)
        await caller.wait_for_voice(after=started, timeout=10)

        gc.collect()
        alive = [ref for ref in server_pcs if ref() is not None]
        assert not alive, f"{len(alive)} replaced peer connections were not collected"
        assert max(task_counts[5:]) <= task_counts[4] + TASK_SLACK, task_counts

    async def scenario() -> None:
        with loopback_only_ice():
            try:
                async with serve_on_loopback(app) as base_url:
                    try:
                        await reconnects(base_url)
                    finally:
                        for caller in callers:
                            await caller.close()
            finally:
                await sessions.close()
        assert sessions.active == 0 and handler.peer_count == 0

    await asyncio.wait_for(scenario(), 150)
    assert not network_audit, network_audit
