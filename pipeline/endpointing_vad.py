"""Silero VAD that hears the end of speech when the voice's energy falls, not 90 ms later.

Silero's confidence is a recurrent model's, and it trails the voice: over the benchmark corpus it
stays above the 0.7 threshold for 80-100 ms after the last voiced sample, and every turn's stop
(``stop_secs`` of silence) is counted from there. The voice's energy, on the other hand, drops
within one 32 ms window. So a window whose level has fallen far below the speaker's recent
speech level counts as silence whatever Silero says; everything else is Silero's call.

Only the end of speech moves: the level is tracked from windows Silero calls speech, so a quiet
talker's whole voice is never gated (the threshold is relative to their own level), and a window
that Silero calls silence stays silence. A short dip inside a word (a stop consonant) is shorter
than the ``stop_secs`` the VAD still needs before it reports a stop.
"""

from __future__ import annotations

import math

import numpy as np
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams

# Quieter than this (dBFS) is digital silence for the level tracker.
_SILENT_DBFS = -120.0


def window_dbfs(buffer: bytes) -> float:
    """RMS level of 16-bit PCM in dB relative to full scale."""
    samples = np.frombuffer(buffer, dtype=np.int16).astype(np.float32) / 32768.0
    if samples.size == 0:
        return _SILENT_DBFS
    power = float(np.mean(samples * samples))
    return 10.0 * math.log10(power) if power > 0.0 else _SILENT_DBFS


class SpeechLevelGate:
    """The speaker's recent speech level, and whether a window fell far enough below it."""

    def __init__(self, *, drop_db: float, decay_db_per_sec: float = 6.0) -> None:
        self._drop_db = drop_db
        self._decay_db_per_sec = decay_db_per_sec
        self._level: float | None = None

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

    def reset(self) -> None:
        """Forget the level (a new speaker, a new session)."""
        self._level = None


class EndpointingSileroVAD(SileroVADAnalyzer):
    """Silero VAD whose speech ends when the energy drops ``drop_db`` below the speech level."""

    def __init__(self, *, params: VADParams, drop_db: float, **kwargs: object) -> None:
        super().__init__(params=params, **kwargs)  # type: ignore[arg-type]
        self._gate = SpeechLevelGate(drop_db=drop_db)

    def voice_confidence(self, buffer: bytes) -> float:
        """Silero's confidence, or 0 for a window far below the speaker's level."""
        # Silero is recurrent: score every window, even one the gate decides.
        confidence = float(np.ravel(super().voice_confidence(buffer))[0])
        seconds = len(buffer) / 2 / max(1, self.sample_rate)
        quiet = self._gate.update(
            window_dbfs(buffer), voiced=confidence >= self.params.confidence, seconds=seconds
        )
        return 0.0 if quiet else confidence
