"""The voice's level in dBFS, and the gate that says when it fell far below the speaker's speech.

The endpointing VAD's gate (pipeline.audio.endpointing_vad), which is the pipeline's one "the
voice went quiet" signal: the early transcript and early Smart Turn read it as frames
(services.frames), not by measuring the level themselves.
"""

from __future__ import annotations

import math

import numpy as np

# Quieter than this (dBFS) is digital silence for the level tracker.
SILENT_DBFS = -120.0


def window_dbfs(buffer: bytes) -> float:
    """RMS level of 16-bit PCM in dB relative to full scale."""
    samples = np.frombuffer(buffer, dtype=np.int16).astype(np.float32) / 32768.0
    if samples.size == 0:
        return SILENT_DBFS
    power = float(np.mean(samples * samples))
    return 10.0 * math.log10(power) if power > 0.0 else SILENT_DBFS


class SpeechLevelGate:
    """The speaker's recent speech level, and whether a window fell far enough below it."""

    def __init__(self, *, drop_db: float, decay_db_per_sec: float = 6.0) -> None:
        self._drop_db = drop_db
        self._decay_db_per_sec = decay_db_per_sec
        self._level: float | None = None

    @property
    def drop_db(self) -> float:
        """How far under the speech level a window must fall to end speech."""
        return self._drop_db

    @property
    def level_dbfs(self) -> float | None:
        """The tracked speech level; None before any speech."""
        return self._level

    def update(self, dbfs: float, *, voiced: bool, seconds: float) -> bool:
        """Track one window; True when it is quiet enough to be the end of speech."""
        if self._level is not None:
            # A peak that decays: a sentence trailing off lowers it, slowly.
            self._level -= self._decay_db_per_sec * seconds
        if voiced and (self._level is None or dbfs > self._level):
            self._level = dbfs
        return self._level is not None and dbfs < self._level - self._drop_db


def quiet_tail_samples(buffer: bytes, threshold_dbfs: float, block: int) -> int:
    """Samples at the end of 16-bit PCM ``buffer`` after its last ``block`` at or above
    ``threshold_dbfs`` (all of it when no block is that loud)."""
    samples = np.frombuffer(buffer, dtype=np.int16).astype(np.float32) / 32768.0
    usable = len(samples) - len(samples) % block
    if usable == 0:
        return len(samples)
    power = np.mean(samples[:usable].reshape(-1, block) ** 2, axis=1)
    loud = np.flatnonzero(10.0 * np.log10(power + 1e-12) >= threshold_dbfs)
    return len(samples) if loud.size == 0 else len(samples) - (int(loud[-1]) + 1) * block
