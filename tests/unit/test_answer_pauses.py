"""The benchmark's longest pause inside an answer, from the recorder's 10 ms blocks."""

from __future__ import annotations

import numpy as np

from pipeline.bench.client.audio_recorder import RECORD_SAMPLE_RATE, AudioRecorder


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RECORD_SAMPLE_RATE)) / RECORD_SAMPLE_RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def test_longest_quiet_run_between_two_moments() -> None:
    recorder = AudioRecorder()
    quiet = np.zeros(int(0.4 * RECORD_SAMPLE_RATE), dtype=np.int16)
    short = np.zeros(int(0.1 * RECORD_SAMPLE_RATE), dtype=np.int16)
    audio = np.concatenate([_tone(0.5), short, _tone(0.5), quiet, _tone(0.5)])
    recorder.add_samples(audio, arrival=100.0)  # blocks are timed from the arrival on
    assert abs(recorder.longest_quiet(100.0, 102.5) - 0.4) <= 0.02
    # Only the window asked about counts.
    assert recorder.longest_quiet(100.0, 101.0) <= 0.12
