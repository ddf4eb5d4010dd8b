"""Transcribe a turn while the VAD is still making sure it ended.

The VAD reports the end of speech only after ``stop_secs`` (200 ms) of silence, and Whisper
started only then: its 60-150 ms were added to every turn. The voice's energy tells much sooner
that the speaker went quiet: the VAD's gate announces it (``services.frames.VoiceQuietFrame``).
Once the voice has been quiet for ``quiet_secs``, the segment so far is transcribed in a worker
thread: the guess. When the VAD's stop comes and nothing but quiet audio followed the guess, the
guess is the turn's transcript. What the guess did not get is audio far below the voice, but not
nothing: a word's quiet end (the "s" of "Americans") goes on under the gate's level for tens of
ms, and cut 40 ms into the quiet Whisper heard "America" where the stop's segment gave
"Americans"; hence 120 ms (``STTConfig.early_transcript_secs``), which still leaves the decode
80 ms before the stop. The voice coming back (``VoiceResumedFrame``), or a new start of speech,
throws the guess away.

The cost is a wasted decode when the user goes on after a pause; the engine's lock makes the
turn's own decode wait for at most one. A guess that is still current when it is done is also
handed to ``on_text`` (the STT announces it as an ``EarlyTranscriptFrame``, from which the LLM
reads the coming turn's prompt ahead: ``services.llm``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

Transcribe = Callable[[bytes], Coroutine[Any, Any, str]]
OnText = Callable[[str], Awaitable[None]]
# Starts a named task: the owning processor's ``create_task`` (pipecat's task manager).
CreateTask = Callable[[Coroutine[Any, Any, str], str], "asyncio.Task[str]"]


@dataclass(frozen=True)
class Guess:
    """A transcription started early, of the first ``length`` bytes of the segment."""

    length: int
    task: asyncio.Task[str]


class EarlyTranscriber:
    """Watches one session's segment as it grows and guesses its transcript once it goes quiet.

    The owner (the STT service) calls :meth:`speech_started`, :meth:`voice_quiet` and
    :meth:`voice_resumed` as the VAD's frames arrive while the user speaks, :meth:`take` at the
    VAD's stop, and :meth:`close` at the end. Everything runs on the event loop; the decode
    itself runs in ``transcribe``'s thread.
    """

    def __init__(
        self,
        transcribe: Transcribe,
        *,
        quiet_secs: float,
        create_task: CreateTask,
        on_text: OnText | None = None,
    ) -> None:
        if quiet_secs <= 0:
            raise ValueError(f"quiet_secs must be positive, got {quiet_secs}")
        self._transcribe = transcribe
        self._create_task = create_task
        self._on_text = on_text
        self._quiet_secs = quiet_secs
        self._guess: Guess | None = None
        self.started = 0
        self.discarded = 0

    def speech_started(self) -> None:
        """A new stretch of speech: any guess is stale."""
        self._discard()

    def voice_quiet(self, quiet_secs: float, segment: bytes | bytearray) -> None:
        """The voice has been quiet ``quiet_secs``; ``segment`` is the whole segment so far."""
        if self._guess is None and quiet_secs >= self._quiet_secs:
            pcm = bytes(segment)
            task = self._create_task(self._guess_text(pcm), "stt-early-transcript")
            self._guess = Guess(len(pcm), task)
            self.started += 1

    def voice_resumed(self) -> None:
        """The voice came back after the guess: it misses the words to come."""
        self._discard()

    def take(self) -> Guess | None:
        """At the VAD's stop: the guess, if only quiet audio came after it."""
        guess, self._guess = self._guess, None
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

    async def _guess_text(self, pcm: bytes) -> str:
        text = await self._transcribe(pcm)
        # Announced while it is the current guess, or the turn's (taken at the VAD's stop).
        current = self._guess is None or self._guess.task is asyncio.current_task()
        if text and current and self._on_text is not None:
            await self._on_text(text)
        return text
