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

The same gate is the pipeline's one "the voice went quiet" signal: :attr:`quiet_secs` says, after
each window, how long the voice has been quiet inside the current speech, and
``pipeline.audio.voice_activity`` carries it downstream as frames (``services.frames``) to the
early transcript and early Smart Turn.
"""

from __future__ import annotations

import numpy as np
from pipecat.audio.vad.vad_analyzer import VADParams, VADState

from services.off_loop import check_off_loop
from services.seams.pipecat_seams import StopHookVADAnalyzer
from services.voice_level import SILENT_DBFS, SpeechLevelGate, quiet_tail_samples, window_dbfs


class EndpointingSileroVAD(StopHookVADAnalyzer):
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
        self._quiet_secs: float | None = None

    @property
    def quiet_secs(self) -> float | None:
        """After the latest audio: how long the voice has been quiet within the current speech
        (:meth:`_quiet_samples`); 0 while it is loud; None outside speech (before the VAD's
        start, after its stop)."""
        return self._quiet_secs

    def voice_confidence(self, buffer: bytes) -> float:
        """Silero's confidence, or 0 for a window far below the speaker's level."""
        # Silero is recurrent: score every window, even one the gate decides.
        check_off_loop("Silero")
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

    def after_windows(self, state: VADState) -> VADState:
        """pipecat's state for the latest audio, ended early from the energy drop; the quiet
        signal updated."""
        speaking = state in (VADState.SPEAKING, VADState.STOPPING)
        quiet = self._quiet_samples() if speaking else 0
        if (
            self._sub_window_stop
            and state == VADState.STOPPING
            # Only when the stop's quiet run is the gate's: then the lead-in is the quiet end of
            # the window the voice fell in. A run begun by Silero alone counts whole windows.
            and self._gated_run == self.quiet_windows
            and quiet >= self.stop_windows * self.num_frames_required()
        ):
            state, speaking = self.end_speech(), False
            self._gated_run = 0
        self._quiet_secs = quiet / max(1, self.sample_rate) if speaking else None
        return state

    def _quiet_samples(self) -> int:
        """Quiet audio since the voice fell: the quiet end of the window it fell in, the gate's
        quiet windows, and the audio received past them when it is all quiet; 0 while loud."""
        if self._gated_run == 0:
            return 0
        pending = self.pending_audio
        tail = quiet_tail_samples(pending, self._threshold_dbfs(), self._block())
        received = len(pending) // 2
        quiet = self._lead_in + self._gated_run * self.num_frames_required()
        return quiet + (received if tail == received else 0)

    def _threshold_dbfs(self) -> float:
        level = self._gate.level_dbfs
        return -SILENT_DBFS if level is None else level - self._gate.drop_db

    def _block(self) -> int:
        return max(1, self.sample_rate // 1000)
