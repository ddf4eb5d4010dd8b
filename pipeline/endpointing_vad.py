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

The stop itself is counted from where the voice fell, not from the next window: pipecat counts
``stop_secs`` in whole 32 ms windows from the first quiet one, which starts anywhere up to a
window after the voice fell silent. Here, when the quiet run began at the energy drop, the quiet
end of the last loud window (in 1 ms blocks) and the quiet audio already received past the last
whole window count too, so the stop comes as soon as ``stop_secs`` of quiet audio has arrived.
Every whole window in it is still Silero's and the gate's to judge; only those two partial
pieces are judged by their energy alone, and one loud block in them counts none of it.
"""

from __future__ import annotations

import math

import numpy as np
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState

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

    def reset(self) -> None:
        """Forget the level (a new speaker, a new session)."""
        self._level = None


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


class EndpointingSileroVAD(SileroVADAnalyzer):
    """Silero VAD whose speech ends when the energy drops ``drop_db`` below the speech level."""

    def __init__(
        self,
        *,
        params: VADParams,
        drop_db: float,
        sub_window_stop: bool = True,
        **kwargs: object,
    ) -> None:
        """``sub_window_stop`` counts the stop from the energy drop itself (module docstring)."""
        super().__init__(params=params, **kwargs)  # type: ignore[arg-type]
        self._gate = SpeechLevelGate(drop_db=drop_db)
        self._sub_window_stop = sub_window_stop
        self._previous_window = b""
        # Windows the gate has called quiet in a row, and the quiet end of the loud window
        # just before them (samples).
        self._gated_run = 0
        self._lead_in = 0

    def voice_confidence(self, buffer: bytes) -> float:
        """Silero's confidence, or 0 for a window far below the speaker's level."""
        # Silero is recurrent: score every window, even one the gate decides.
        confidence = float(np.ravel(super().voice_confidence(buffer))[0])
        seconds = len(buffer) / 2 / max(1, self.sample_rate)
        quiet = self._gate.update(
            window_dbfs(buffer), voiced=confidence >= self.params.confidence, seconds=seconds
        )
        if not quiet:
            self._gated_run = 0
        elif self._gated_run == 0:
            self._gated_run = 1
            self._lead_in = quiet_tail_samples(
                self._previous_window, self._threshold_dbfs(), self._block()
            )
        else:
            self._gated_run += 1
        self._previous_window = buffer
        return 0.0 if quiet else confidence

    def _run_analyzer(self, buffer: bytes) -> VADState:
        state = super()._run_analyzer(buffer)
        if not self._sub_window_stop or state != VADState.STOPPING:
            return state
        # Only when the stop's quiet run is the gate's: then the lead-in is the quiet end of the
        # window the voice fell in. A run begun by Silero alone counts whole windows, as pipecat.
        if self._gated_run != self._vad_stopping_count:
            return state
        pending = self._vad_buffer
        tail = quiet_tail_samples(pending, self._threshold_dbfs(), self._block())
        received = len(pending) // 2
        quiet = self._lead_in + self._vad_stopping_count * self._vad_frames
        quiet += received if tail == received else 0
        if quiet >= self._vad_stop_frames * self._vad_frames:
            self._vad_state = VADState.QUIET
            self._vad_stopping_count = 0
            self._gated_run = 0
            return VADState.QUIET
        return state

    def _threshold_dbfs(self) -> float:
        level = self._gate.level_dbfs
        return -_SILENT_DBFS if level is None else level - self._gate.drop_db

    def _block(self) -> int:
        return max(1, self.sample_rate // 1000)
