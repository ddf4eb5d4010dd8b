"""Kokoro output edges: the silent lead-in is trimmed, clause pauses follow punctuation."""

from __future__ import annotations

import numpy as np

from services.tts import pause_after, trim_leading_quiet


def test_leading_quiet_is_trimmed_to_a_few_milliseconds() -> None:
    rate = 24000
    quiet = np.full(int(0.04 * rate), 1e-4, dtype=np.float32)  # -80 dBFS lead-in
    voice = (0.3 * np.sin(np.linspace(0, 400 * np.pi, rate // 2))).astype(np.float32)
    trimmed = trim_leading_quiet(np.concatenate([quiet, voice]), rate)
    lead = len(trimmed) - len(voice)
    assert 0 <= lead <= int(0.006 * rate)


def test_all_quiet_audio_is_left_alone() -> None:
    quiet = np.zeros(2400, dtype=np.float32)
    assert len(trim_leading_quiet(quiet, 24000)) == 2400


def test_pause_follows_the_final_punctuation() -> None:
    assert pause_after("It is noon. ") == 0.25
    assert pause_after("Well,") == 0.1
    assert pause_after("and then") == 0.0
    assert pause_after("") == 0.0
