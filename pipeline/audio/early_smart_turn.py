"""Smart Turn v3 that decides while the VAD is still making sure the speech ended.

pipecat asks Smart Turn whether the turn is over at the VAD's stop, ``stop_secs`` (200 ms) of
quiet after the last word, and the turn waits for the answer: 35 ms on an idle 2-core machine,
95 ms at the median in the benchmark, where Whisper and the LLM's read-ahead want the same
cores (over 100 ms of every turn went to this wait). The voice's energy says much sooner
that the speaker went quiet. Once the audio has stayed far below the speaker's level for
``quiet_secs`` (the drop that ends speech for the VAD, ``services.voice_level``), Smart Turn
runs on the turn so far, its quiet tail repeated up to the length the VAD's stop would have
given it: the guess. At the VAD's stop, the guess is the prediction when nothing but quiet audio
came after it; any louder frame throws it away, and the stop runs the model as pipecat does.

Padding with the turn's own quiet rather than digital silence keeps the model's input what it
would have been: over the benchmark's 20 turns with a -65 dBFS noise floor, the guess's
probability is within 0.05 of the one at the VAD's stop and no decision flips (zeros: 0.16).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.metrics.metrics import MetricsData

from pipeline.ops.compute_priority import compute_executor, lowering_new_threads
from services.voice_level import SpeechLevelGate, window_dbfs

Prediction = tuple[EndOfTurnState, MetricsData | None]


class EarlySmartTurn(LocalSmartTurnAnalyzerV3):
    """Local Smart Turn v3 whose end-of-turn prediction starts once the voice goes quiet."""

    def __init__(
        self,
        *,
        quiet_secs: float,
        drop_db: float,
        pad_to_secs: float,
        nice: int = 0,
        **kwargs: Any,
    ) -> None:
        """``quiet_secs`` of audio ``drop_db`` under the voice start the guess, whose quiet tail
        is repeated to ``pad_to_secs`` (the VAD's ``stop_secs``). The model runs at ``nice``
        (pipeline.ops.compute_priority): the guess shares the cores with Whisper's early
        transcript, which the LLM's read-ahead waits for."""
        self._nice = nice
        # onnxruntime starts its intra-op threads while the session is built, on this thread.
        with lowering_new_threads(nice):
            super().__init__(**kwargs)
        if quiet_secs <= 0:
            raise ValueError(f"quiet_secs must be positive, got {quiet_secs}")
        self._gate = SpeechLevelGate(drop_db=drop_db)
        self._quiet_secs = quiet_secs
        self._pad_to_secs = pad_to_secs
        self._quiet: list[np.ndarray] = []
        self._quiet_for = 0.0
        self._guess: Future[Prediction] | None = None
        self.guesses_used = 0

    @property
    def _model_executor(self) -> ThreadPoolExecutor:
        """pipecat's one model thread, at the models' priority."""
        if self._executor is None:
            self._executor = compute_executor(self._nice, "smart-turn", max_workers=1)
        return self._executor

    def append_audio(self, buffer: bytes, is_speech: bool) -> EndOfTurnState:
        """pipecat's buffering, and the guess started or thrown away by the audio's level."""
        state = super().append_audio(buffer, is_speech)
        if state == EndOfTurnState.COMPLETE or not buffer:
            return state  # the silence fallback ended the turn and cleared the buffer
        seconds = len(buffer) / 2 / max(1, self.sample_rate)
        if not self._gate.update(window_dbfs(buffer), voiced=is_speech, seconds=seconds):
            self._drop_guess()
            return state
        self._quiet.append(np.frombuffer(buffer, dtype=np.int16))
        self._quiet_for += seconds
        if self._guess is None and self._speech_triggered and self._quiet_for >= self._quiet_secs:
            self._guess = self._model_executor.submit(
                self._process_speech_segment, [*self._audio_buffer, *self._padding()]
            )
        return state

    async def analyze_end_of_turn(self) -> Prediction:
        """The guess's prediction when it is still current, else pipecat's own."""
        guess, self._guess = self._guess, None
        if guess is None:
            return await super().analyze_end_of_turn()
        state, result = await asyncio.wrap_future(guess)
        self.guesses_used += 1
        if state == EndOfTurnState.COMPLETE:
            self._clear(state)
        return state, result

    def _padding(self) -> list[tuple[float, np.ndarray]]:
        """The latest quiet frame, repeated to make the tail ``pad_to_secs`` long."""
        missing = round((self._pad_to_secs - self._quiet_for) * self.sample_rate)
        if missing <= 0:
            return []
        # The latest frame: the earlier ones may still hold the last word's fading end.
        return [(time.monotonic(), np.resize(self._quiet[-1], missing))]

    def _drop_guess(self) -> None:
        if self._guess is not None:
            self._guess.cancel()  # only if the model has not started on it
            self._guess = None
        self._quiet.clear()
        self._quiet_for = 0.0

    def _clear(self, turn_state: EndOfTurnState) -> None:
        super()._clear(turn_state)
        self._drop_guess()
