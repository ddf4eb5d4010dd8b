"""The audio jitter buffer: replaced on audio receivers only, and a lost packet costs 40 ms once,
not 280 ms for the rest of the session (RELIABILITY row 7)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtp import RtpPacket

import pipeline.webrtc.jitter
from pipeline.webrtc.jitter import shorten_audio_jitter_buffers


async def _installed(
    monkeypatch: pytest.MonkeyPatch, kinds: tuple[str, ...], **options: int
) -> tuple[int, list[tuple[str, Any]]]:
    """Run shorten_audio_jitter_buffers on a peer connection with a transceiver of each kind;
    return its count and the (receiver's kind, buffer) it handed to aiortc (whether aiortc's
    receiver then uses that buffer is checked in test_library_seams)."""
    handed: list[tuple[Any, Any]] = []
    monkeypatch.setattr(
        pipeline.webrtc.jitter,
        "replace_jitter_buffer",
        lambda receiver, buffer: handed.append((receiver, buffer)),
    )
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        for kind in kinds:
            pc.addTransceiver(kind, direction="sendrecv")
        changed = shorten_audio_jitter_buffers(pc, **options)
        kind_of = {id(t.receiver): t.kind for t in pc.getTransceivers()}
        return changed, [(kind_of[id(receiver)], buffer) for receiver, buffer in handed]
    finally:
        await pc.close()


@pytest.mark.asyncio
async def test_only_audio_receivers_get_the_short_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    changed, handed = await _installed(monkeypatch, ("audio", "video"), prefetch=1)
    assert changed == 1
    assert [kind for kind, _buffer in handed] == ["audio"]
    # With a prefetch of one, a packet is released when the next one arrives, not before.
    assert _play(handed[0][1], [0, 1, 2]) == [(0, 1), (1, 1)]


def test_prefetch_out_of_range_is_refused() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    with pytest.raises(ValueError, match="prefetch"):
        shorten_audio_jitter_buffers(pc, prefetch=16)


# --- RELIABILITY row 7: packet loss must not delay the rest of the session --------------------

FRAME_SAMPLES = 960  # 20 ms of 48 kHz Opus


async def _receiver_buffer(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The buffer a session's audio receiver gets (its peer never connects: no socket)."""
    _changed, handed = await _installed(monkeypatch, ("audio",))
    return handed[0][1]


def _packet(sequence: int) -> RtpPacket:
    packet = RtpPacket(payload_type=111, sequence_number=sequence, timestamp=sequence * 960)
    # What aiortc's receiver stores on a packet before its jitter buffer sees it.
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
async def test_a_lossy_stream_keeps_flowing_one_packet_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(7)
    arrivals, sequence = [], 0
    while sequence < 1500:  # 30 s of audio, 10% lost in bursts of one to three packets
        if rng.random() < 0.05:
            sequence += rng.randint(1, 3)
        arrivals.append(sequence)
        sequence += 1
    released = _play(await _receiver_buffer(monkeypatch), arrivals)
    # Every packet that arrived is played, in order, except the one waiting for its successor
    # (after the first loss the buffer stays one packet behind: one frame per arrival).
    assert [played for played, _waited in released] == arrivals[:-1]
    # Each is released by the next arrival at the latest, gap or not; aiortc's own buffer holds
    # every packet 14 arrivals (280 ms) for the rest of the session after the first loss.
    assert max(waited for _played, waited in released) <= 1


@pytest.mark.asyncio
async def test_packets_in_sequence_reach_the_server_as_they_arrive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    released = _play(await _receiver_buffer(monkeypatch), list(range(50)))
    # Nothing to play out on the server: a packet in sequence is not held for its successor.
    assert released == [(sequence, 0) for sequence in range(50)]


@pytest.mark.asyncio
async def test_a_late_packet_within_the_wait_is_put_back_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arrivals = [0, 1, 2, 4, 3, 5, 6, 7]
    released = _play(await _receiver_buffer(monkeypatch), arrivals)
    assert [played for played, _waited in released] == [0, 1, 2, 3, 4, 5, 6]
