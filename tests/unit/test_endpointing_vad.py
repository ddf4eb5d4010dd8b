"""The speech-level gate that ends speech when the voice's energy falls."""

from __future__ import annotations

import numpy as np

from services.voice_level import SpeechLevelGate, quiet_tail_samples, window_dbfs

WINDOW_S = 0.032


def _pcm(level: float, samples: int = 512) -> bytes:
    wave = level * np.sin(np.linspace(0, 40 * np.pi, samples))
    return (wave * 32767).astype(np.int16).tobytes()


def test_window_level_in_dbfs() -> None:
    assert window_dbfs(b"") < -100
    assert window_dbfs(np.zeros(512, dtype=np.int16).tobytes()) < -100
    # A full-scale sine is -3 dBFS RMS.
    assert abs(window_dbfs(_pcm(1.0)) + 3.0) < 0.1


def test_nothing_is_gated_before_any_speech() -> None:
    gate = SpeechLevelGate(drop_db=30)
    assert not gate.update(-90.0, voiced=False, seconds=WINDOW_S)
    assert gate.level_dbfs is None


def test_a_fall_far_below_the_speech_level_ends_speech() -> None:
    gate = SpeechLevelGate(drop_db=30)
    for _ in range(10):
        assert not gate.update(-20.0, voiced=True, seconds=WINDOW_S)
    # A soft syllable is still speech; the silence after the last word is not.
    assert not gate.update(-40.0, voiced=True, seconds=WINDOW_S)
    assert gate.update(-60.0, voiced=True, seconds=WINDOW_S)


def test_the_threshold_follows_a_quiet_talker() -> None:
    gate = SpeechLevelGate(drop_db=30)
    for _ in range(10):
        gate.update(-45.0, voiced=True, seconds=WINDOW_S)
    # -60 dBFS would be silence next to a loud voice; next to this one it is speech.
    assert not gate.update(-60.0, voiced=True, seconds=WINDOW_S)
    assert gate.update(-80.0, voiced=True, seconds=WINDOW_S)


def test_unvoiced_windows_do_not_raise_the_level() -> None:
    gate = SpeechLevelGate(drop_db=30)
    gate.update(-40.0, voiced=True, seconds=WINDOW_S)
    gate.update(-5.0, voiced=False, seconds=WINDOW_S)  # a door slam Silero calls noise
    assert gate.level_dbfs is not None and gate.level_dbfs < -39


def test_the_quiet_tail_of_a_window_in_1_ms_blocks() -> None:
    loud = _pcm(0.5, 320)  # 20 ms of voice
    hush = np.zeros(192, dtype=np.int16).tobytes()  # then 12 ms of nothing
    assert quiet_tail_samples(loud + hush, -40.0, 16) == 192
    assert quiet_tail_samples(loud, -40.0, 16) == 0
    assert quiet_tail_samples(hush, -40.0, 16) == 192  # no loud block: all of it
    assert quiet_tail_samples(b"", -40.0, 16) == 0
