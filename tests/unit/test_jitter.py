"""The audio jitter buffer is replaced on audio receivers only."""

from __future__ import annotations

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from pipeline.jitter import shorten_audio_jitter_buffers


@pytest.mark.asyncio
async def test_only_audio_receivers_get_the_short_buffer() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio", direction="sendrecv")
        pc.addTransceiver("video", direction="sendrecv")
        assert shorten_audio_jitter_buffers(pc, prefetch=1) == 1
        audio = next(t.receiver for t in pc.getTransceivers() if t.kind == "audio")
        assert audio._RTCRtpReceiver__jitter_buffer._prefetch == 1  # type: ignore[attr-defined]
    finally:
        await pc.close()


def test_prefetch_out_of_range_is_refused() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    with pytest.raises(ValueError, match="prefetch"):
        shorten_audio_jitter_buffers(pc, prefetch=16)
