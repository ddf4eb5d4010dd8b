"""The audio jitter buffer: replaced on audio receivers only, and a lost packet costs 40 ms once,
not 280 ms for the rest of the session (RELIABILITY row 7)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtp import RtpPacket

from pipeline.webrtc.jitter import shorten_audio_jitter_buffers


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


# --- RELIABILITY row 7: packet loss must not delay the rest of the session --------------------

FRAME_SAMPLES = 960  # 20 ms of 48 kHz Opus


async def _receiver_buffer() -> Any:
    """The buffer a session's audio receiver gets (its peer never connects: no socket)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio", direction="sendrecv")
        shorten_audio_jitter_buffers(pc)
        return pc.getTransceivers()[0].receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    finally:
        await pc.close()


def _packet(sequence: int) -> RtpPacket:
    packet = RtpPacket(payload_type=111, sequence_number=sequence, timestamp=sequence * 960)
    packet._data = sequence.to_bytes(2, "big")  # type: ignore[attr-defined]
    return packet


def _play(buffer: Any, arrivals: list[int]) -> list[tuple[int, int]]:
    """Feed packets in arrival order; per release, (sequence, arrivals it waited for)."""
    arrived_at: dict[int, int] = {}
    released = []
    for index, sequence in enumerate(arrivals):
        arrived_at.setdefault(sequence, index)
        _pli, frame = buffer.add(_packet(sequence))
        if frame is not None:
            played = frame.timestamp // FRAME_SAMPLES
            released.append((played, index - arrived_at[played]))
    return released


@pytest.mark.asyncio
async def test_a_lossy_stream_keeps_flowing_one_packet_behind() -> None:
    rng = random.Random(7)
    arrivals, sequence = [], 0
    while sequence < 1500:  # 30 s of audio, 10% lost in bursts of one to three packets
        if rng.random() < 0.05:
            sequence += rng.randint(1, 3)
        arrivals.append(sequence)
        sequence += 1
    released = _play(await _receiver_buffer(), arrivals)
    # Every packet that arrived is played, in order, except the one waiting for its successor
    # (after the first loss the buffer stays one packet behind: one frame per arrival).
    assert [played for played, _waited in released] == arrivals[:-1]
    # Each is released by the next arrival at the latest, gap or not; aiortc's own buffer holds
    # every packet 14 arrivals (280 ms) for the rest of the session after the first loss.
    assert max(waited for _played, waited in released) <= 1


@pytest.mark.asyncio
async def test_packets_in_sequence_reach_the_server_as_they_arrive() -> None:
    released = _play(await _receiver_buffer(), list(range(50)))
    # Nothing to play out on the server: a packet in sequence is not held for its successor.
    assert released == [(sequence, 0) for sequence in range(50)]


@pytest.mark.asyncio
async def test_a_late_packet_within_the_wait_is_put_back_in_order() -> None:
    arrivals = [0, 1, 2, 4, 3, 5, 6, 7]
    released = _play(await _receiver_buffer(), arrivals)
    assert [played for played, _waited in released] == [0, 1, 2, 3, 4, 5, 6]
