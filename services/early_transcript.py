"""Transcribe a turn while the VAD is still making sure it ended.

The VAD reports the end of speech only after ``stop_secs`` (200 ms) of silence, and Whisper
started only then: its 60-150 ms were added to every turn. The voice's energy tells much sooner
that the speaker went quiet. Once the audio has stayed far below the speaker's level (the same
drop that ends speech for the VAD, ``services.voice_level``) for ``quiet_secs``, the segment
so far is transcribed in a worker thread: the guess. When the VAD's stop comes and nothing but
quiet audio followed the guess, the guess is the turn's transcript; Whisper hears the same
words either way, as what it did not get is audio far below the voice, and every segment is
padded with silence anyway. Any louder frame, or a new start of speech, throws the guess away.

The cost is a wasted decode when the user goes on after a pause; the engine's lock makes the
turn's own decode wait for at most one. A guess that is still current when it is done is also
handed to ``on_text`` (the LLM reads the coming turn's prompt ahead: ``services.llm``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from services.voice_level import SpeechLevelGate, window_dbfs

Transcribe = Callable[[bytes], Coroutine[Any, Any, str]]
OnText = Callable[[str], None]


@dataclass(frozen=True)
class Guess:
    """A transcription started early, of the first ``length`` bytes of the segment."""

    length: int
    task: asyncio.Task[str]


class EarlyTranscriber:
    """Watches one session's segment as it grows and guesses its transcript once it goes quiet.

    The owner (the STT service) calls :meth:`speech_started`, :meth:`audio` for every frame of
    the segment while the user speaks, :meth:`take` at the VAD's stop, and :meth:`close` at the
    end. Everything runs on the event loop; the decode itself runs in ``transcribe``'s thread.
    """

    def __init__(
        self,
        transcribe: Transcribe,
        *,
        drop_db: float,
        quiet_secs: float,
        on_text: OnText | None = None,
    ) -> None:
        if quiet_secs <= 0:
            raise ValueError(f"quiet_secs must be positive, got {quiet_secs}")
        self._transcribe = transcribe
        self._on_text = on_text
        self._gate = SpeechLevelGate(drop_db=drop_db)
        self._quiet_secs = quiet_secs
        self._quiet_for = 0.0
        self._guess: Guess | None = None
        self.started = 0
        self.discarded = 0

    def speech_started(self) -> None:
        """A new stretch of speech: any guess is stale, and the level is measured afresh."""
        self._discard()
        self._gate.reset()
        self._quiet_for = 0.0

    def audio(self, frame: bytes, sample_rate: int, segment: bytes | bytearray) -> None:
        """Track one frame of the user's speech; ``segment`` is the whole segment so far,
        ``frame`` included."""
        seconds = len(frame) / 2 / max(1, sample_rate)
        if not self._gate.update(window_dbfs(frame), voiced=True, seconds=seconds):
            self._quiet_for = 0.0
            self._discard()  # the voice came back after the guess
            return
        self._quiet_for += seconds
        if self._guess is None and self._quiet_for >= self._quiet_secs:
            pcm = bytes(segment)
            task: asyncio.Task[str] = asyncio.create_task(
                self._transcribe(pcm), name="stt-early-transcript"
            )
            task.add_done_callback(self._done)
            self._guess = Guess(len(pcm), task)
            self.started += 1

    def take(self) -> Guess | None:
        """At the VAD's stop: the guess, if only quiet audio came after it."""
        guess, self._guess = self._guess, None
        self._quiet_for = 0.0
        return guess

    def close(self) -> None:
        """The session ends: a guess still running is not wanted."""
        self._discard()

    def _discard(self) -> None:
        if self._guess is not None:
            # The decode's thread finishes on its own; only its waiter is cancelled.
            self._guess.task.cancel()
            self._guess = None
            self.discarded += 1

    def _done(self, task: asyncio.Task[str]) -> None:
        # A discarded guess is never awaited: its outcome is fetched here so it is not reported.
        if task.cancelled() or task.exception() is not None:
            return
        current = self._guess is not None and self._guess.task is task
        text = task.result()
        if text and self._on_text is not None and (current or self._guess is None):
            self._on_text(text)
