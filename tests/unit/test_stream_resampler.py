"""The microphone's resampler: 1 ms behind the input, where pipecat's soxr stream is 44 ms."""

from __future__ import annotations

import asyncio

import numpy as np
from pipecat.audio.utils import create_stream_resampler

from pipeline.audio.stream_resampler import StreamResampler

IN_RATE, OUT_RATE = 48000, 16000
FRAME = IN_RATE // 50  # 20 ms, one Opus packet


def _noise(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal(int(seconds * IN_RATE)) * 3000).astype(np.int16)


def _lags_ms(resample: object, audio: np.ndarray) -> list[float]:
    """Input fed minus output returned, in ms, after each 20 ms frame."""
    fed = out = 0.0
    lags = []
    for start in range(0, len(audio), FRAME):
        chunk = audio[start : start + FRAME].tobytes()
        result = resample(chunk)  # type: ignore[operator]
        fed += FRAME / IN_RATE * 1000
        out += len(result) / 2 / OUT_RATE * 1000
        lags.append(fed - out)
    return lags[5:]


def test_the_output_trails_the_input_by_about_a_millisecond() -> None:
    lags = _lags_ms(StreamResampler(IN_RATE, OUT_RATE).resample, _noise(1.0))
    assert max(lags) < 3.0
    soxr = create_stream_resampler()

    def stock(chunk: bytes) -> bytes:
        return asyncio.run(soxr.resample(chunk, IN_RATE, OUT_RATE))

    # What it replaces: whole frames held back.
    assert float(np.median(_lags_ms(stock, _noise(1.0)))) > 20.0


def test_a_tone_keeps_its_frequency_and_level() -> None:
    t = np.arange(IN_RATE) / IN_RATE
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    resampler = StreamResampler(IN_RATE, OUT_RATE)
    out = b"".join(
        resampler.resample(tone[i : i + FRAME].tobytes()) for i in range(0, IN_RATE, FRAME)
    )
    samples = np.frombuffer(out, dtype=np.int16).astype(np.float32)[1000:]
    spectrum = np.abs(np.fft.rfft(samples))
    peak_hz = np.argmax(spectrum) * OUT_RATE / len(samples)
    assert abs(peak_hz - 440) < 5
    assert abs(np.sqrt(np.mean(samples**2)) - 10000 / np.sqrt(2)) < 300
    assert resampler.resample(b"") == b""
