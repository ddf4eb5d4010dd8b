"""A server configured for 10 ms microphone packets asks for them in its answer
(pipeline.webrtc.packet_time) and a caller that honours it, as Chrome does, sends them: the server
receives about 100 audio packets a second instead of 50. By default, and always in pipecat's
stock pipeline, the answer leaves the caller at 20 ms.

The real app and session manager serve on 127.0.0.1 with the echo pipeline per session; the
packets are counted by the server's own RTP receiver.
"""

from __future__ import annotations

import asyncio

import pytest
from aiortc.stats import RTCInboundRtpStreamStats

from pipeline.bench.client.loopback_caller import LoopbackCaller
from pipeline.config import PipelineVariant, ServerConfig
from pipeline.server.app import create_app
from pipeline.sessions.manager import PeerRequestHandler, SessionManager
from pipeline.webrtc.ice_policy import loopback_only_ice
from pipeline.webrtc.packet_time import packet_time
from tests.loopback.echo_bot import echo_session, serve_on_loopback
from tests.support.runtime import unloaded_runtime

WINDOW_S = 2.0


async def _packets_received(handler: PeerRequestHandler, pc_id: str) -> int:
    connection = handler.peer(pc_id)
    assert connection is not None, "the server holds no peer for the call"
    receiver = connection.pc.getTransceivers()[0].receiver
    report = await receiver.getStats()
    counts = [s.packetsReceived for s in report.values() if isinstance(s, RTCInboundRtpStreamStats)]
    assert counts, "the server's audio receiver reports no inbound RTP stream"
    return sum(counts)


@pytest.mark.asyncio
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("variant", "asked", "packet_ms", "per_second"),
    [
        ("tuned", 10, 10, (85, 115)),
        ("tuned", None, 20, (40, 60)),
        ("stock", 10, 20, (40, 60)),
    ],
)
async def test_the_answer_sets_the_microphones_packet_length(
    variant: PipelineVariant,
    asked: int | None,
    packet_ms: int,
    per_second: tuple[int, int],
    network_audit: list[str],
) -> None:
    runtime = unloaded_runtime(
        ServerConfig(max_sessions=1, microphone_packet_ms=asked), variant=variant
    )
    handler = PeerRequestHandler(ice_servers=[])
    sessions = SessionManager(runtime, handler, start_session=echo_session)
    app = create_app(runtime, sessions=sessions)
    with loopback_only_ice():
        try:
            async with serve_on_loopback(app) as base_url:
                caller = LoopbackCaller(base_url)
                try:
                    await caller.connect()
                    assert caller.answer_sdp is not None and caller.pc_id is not None
                    assert packet_time(caller.answer_sdp) == (asked if variant == "tuned" else None)
                    assert caller.microphone_packet_ms == packet_ms
                    await asyncio.sleep(0.5)  # past the connection's first packets
                    before = await _packets_received(handler, caller.pc_id)
                    sent_before = caller.microphone_seconds_sent
                    await asyncio.sleep(WINDOW_S)
                    after = await _packets_received(handler, caller.pc_id)
                    sent = caller.microphone_seconds_sent - sent_before
                finally:
                    await caller.close()
        finally:
            await sessions.close()
    # Per second of microphone audio, not of wall time: a client process short of CPU sends
    # less audio in the window (its clock skips ahead), each packet still its length.
    rate = (after - before) / sent
    low, high = per_second
    assert low <= rate <= high, f"{rate:.0f} packets per second of audio from a {packet_ms} ms mic"
    assert not network_audit, network_audit
