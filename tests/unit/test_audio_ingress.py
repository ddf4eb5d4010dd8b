"""The audio ingress repairs or drops malformed frames exactly, before any model sees them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pipecat.audio.filters.base_audio_filter import BaseAudioFilter
from pipecat.frames.frames import FilterControlFrame, Frame, InputAudioRawFrame
from pipecat.tests.utils import SleepFrame, run_test

from pipeline.audio.ingress import AudioIngress

RATE = 16000


def _frame(audio: bytes, rate: int = RATE, channels: int = 1) -> InputAudioRawFrame:
    return InputAudioRawFrame(audio=audio, sample_rate=rate, num_channels=channels)


async def _through(ingress: AudioIngress, frames: list[Frame]) -> list[InputAudioRawFrame]:
    down, _up = await run_test(ingress, frames_to_send=[*frames, SleepFrame(0.05)])
    return [f for f in down if isinstance(f, InputAudioRawFrame)]


@pytest.mark.asyncio
async def test_a_stream_cut_at_odd_bytes_comes_out_aligned_and_whole() -> None:
    samples = np.arange(-500, 500, dtype=np.int16)
    data = samples.tobytes()
    cuts = [0, 3, 641, 1000, 1333, len(data)]
    frames: list[Frame] = [_frame(data[a:b]) for a, b in itertools.pairwise(cuts)]
    out = await _through(AudioIngress(RATE), frames)
    assert all(len(f.audio) % 2 == 0 and f.num_frames == len(f.audio) // 2 for f in out)
    assert b"".join(f.audio for f in out) == data


@pytest.mark.asyncio
async def test_empty_and_implausible_frames_are_dropped() -> None:
    ingress = AudioIngress(RATE)
    out = await _through(ingress, [_frame(b""), _frame(b"\x00\x01" * 160, rate=1000)])
    assert out == []
    assert ingress.dropped == {"empty": 1, "implausible sample rate": 1}


@pytest.mark.asyncio
async def test_stereo_is_downmixed_and_other_rates_resampled() -> None:
    stereo = np.repeat(np.full(320, 1000, dtype=np.int16), 2).tobytes()
    out = await _through(AudioIngress(RATE), [_frame(stereo, channels=2)])
    assert [(f.num_channels, f.sample_rate, len(f.audio)) for f in out] == [(1, RATE, 640)]
    assert set(np.frombuffer(out[0].audio, dtype=np.int16)) == {1000}

    tone = (np.sin(np.arange(48000) / 48000 * 2 * np.pi * 440) * 8000).astype(np.int16)
    frames: list[Frame] = [
        _frame(tone[i : i + 960].tobytes(), rate=48000) for i in range(0, 48000, 960)
    ]
    out = await _through(AudioIngress(RATE), frames)
    assert all(f.sample_rate == RATE for f in out)
    total = sum(len(f.audio) // 2 for f in out)
    assert abs(total - RATE) < 1000  # one second in, one out, less the resampler's window


class _BrokenFilter(BaseAudioFilter):
    def __init__(self) -> None:
        self.started_at: int | None = None

    async def start(self, sample_rate: int) -> None:
        self.started_at = sample_rate

    async def stop(self) -> None:
        return None

    async def process_frame(self, frame: FilterControlFrame) -> None:
        return None

    async def filter(self, audio: bytes) -> bytes:
        raise RuntimeError("broken filter")


@pytest.mark.asyncio
async def test_a_failing_noise_filter_lets_the_audio_through_unfiltered() -> None:
    noise_filter = _BrokenFilter()
    data = np.arange(320, dtype=np.int16).tobytes()
    out = await _through(AudioIngress(RATE, noise_filter), [_frame(data), _frame(data)])
    assert noise_filter.started_at == RATE
    assert [f.audio for f in out] == [data, data]
