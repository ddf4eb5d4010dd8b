"""The bot's Opus packets line up with its 10 ms frames: speech that starts in a frame is in the
packet made from that frame, not the next one (pipeline.webrtc.opus_sender)."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.jitterbuffer import JitterFrame

from pipeline.webrtc.opus_sender import LowDelayOpusEncoder, resampler_held_samples

RATE = 24_000  # Kokoro's, the bot's output rate
FRAME = RATE // 100
ONSET_FRAME = 3


class _Unaligned(LowDelayOpusEncoder):
    """The same encoder without the alignment: aiortc's encode."""

    def encode(
        self, frame: av.frame.Frame, force_keyframe: bool = False
    ) -> tuple[list[bytes], int]:
        return OpusEncoder.encode(self, frame, force_keyframe)


def _onset(encoder: OpusEncoder) -> tuple[int, float]:
    """(index of the frame whose packet first carries the tone, ms into that packet)."""
    decoder = OpusDecoder()
    for index in range(ONSET_FRAME + 4):
        samples = np.zeros(FRAME, dtype=np.int16)
        if index >= ONSET_FRAME:
            samples[:] = (8000 * np.sin(np.arange(FRAME) / 3)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = index * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        payloads, timestamp = encoder.encode(frame)
        for payload in payloads:
            for decoded in decoder.decode(JitterFrame(data=payload, timestamp=timestamp or 0)):
                assert isinstance(decoded, av.AudioFrame)
                left = np.abs(decoded.to_ndarray().reshape(-1, 2)[:, 0].astype(np.float64))
                loud = np.flatnonzero(left > 1000)
                if len(loud):
                    return index, float(loud[0]) / 48.0
    raise AssertionError("the tone never came out")


def test_speech_leaves_in_the_packet_of_the_frame_it_starts_in() -> None:
    index, into = _onset(LowDelayOpusEncoder())
    assert index == ONSET_FRAME
    # Opus's 2.5 ms look-ahead and the 0.7 ms of lead-in silence, nothing more.
    assert into == pytest.approx(3.2, abs=0.8)


def test_without_the_lead_in_it_would_leave_a_packet_later() -> None:
    index, _ = _onset(_Unaligned())
    assert index == ONSET_FRAME + 1


def test_nothing_is_held_back_when_nothing_is_resampled() -> None:
    for layout, channels in (("mono", 1), ("stereo", 2)):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 480 * channels), dtype=np.int16), format="s16", layout=layout
        )
        frame.sample_rate = 48_000
        assert resampler_held_samples(frame) == 0
    frame = av.AudioFrame.from_ndarray(np.zeros((1, FRAME), dtype=np.int16), format="s16")
    frame.sample_rate = RATE
    assert resampler_held_samples(frame) > 0
