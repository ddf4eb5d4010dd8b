"""Speech to text: faster-whisper, loaded once per process, transcribing each user turn.

pipecat's ``WhisperSTTService`` loads its model per instance and decodes with beam search,
temperature fallback and conditioning on previous text. Here one :class:`WhisperEngine` is
shared by every session and decodes greedily, which is several times faster on a CPU.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncGenerator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from faster_whisper import WhisperModel
from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    TranscriptionFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import STTSettings
from pipecat.transcriptions.language import Language
from pipecat.utils.time import time_now_iso8601

from pipeline.config import STTConfig
from services.early_transcript import EarlyTranscriber, Guess
from services.frames import EarlyTranscriptFrame, VoiceQuietFrame, VoiceResumedFrame
from services.off_loop import check_off_loop
from services.seams.pipecat_seams import SegmentHandoffSTTService
from services.turn_transcript import TurnSoFar, new_words
from services.whisper_window import ShortWindowDecoder

# Segments whose no-speech probability is above this are noise, not words.
_NO_SPEECH_THRESHOLD = 0.6


class WhisperEngine:
    """One faster-whisper model, thread-safe, shared by all sessions."""

    # Models constructed in this process (reported by /health: 1 when shared as intended).
    loads: ClassVar[int] = 0

    def __init__(self, config: STTConfig, executor: Executor | None = None) -> None:
        """``executor`` runs the transcriptions (pipeline.ops.compute_priority); None: asyncio's."""
        type(self).loads += 1
        self.config = config
        self.executor = executor
        started = time.perf_counter()
        # Half the cores by default (CTranslate2's own default is four threads): Whisper runs
        # at the same moment as Smart Turn (one thread), and on two busy cores a 2-second turn
        # took a median 66 ms with one thread against 147 ms with two.
        threads = config.cpu_threads or max(1, (os.cpu_count() or 2) // 2)
        # A local directory with tokenizer.json: faster-whisper never reaches for a hub.
        self._model = WhisperModel(
            str(config.model_dir),
            device=config.device,
            compute_type=config.compute_type,
            cpu_threads=threads,
            local_files_only=True,
        )
        # CTranslate2 queues concurrent calls itself, but decoding state in faster-whisper's
        # generator is per call; one lock keeps two sessions from fighting for two cores.
        self._lock = threading.Lock()
        self._window = (
            ShortWindowDecoder(
                self._model,
                margin_secs=config.window_margin_secs,
                min_secs=config.min_window_secs,
                beam_size=config.beam_size,
            )
            if config.short_window
            else None
        )
        # Short-window decodes that were not trusted and went to the full window.
        self.full_window_fallbacks = 0
        self.load_secs = time.perf_counter() - started
        logger.info(f"Whisper model {config.model_dir.name} loaded in {self.load_secs:.2f} s")

    @property
    def model(self) -> WhisperModel:
        """The loaded faster-whisper model (for an offline decode beside the live one)."""
        return self._model

    def transcribe(self, audio: np.ndarray) -> str:
        """Transcribe 16 kHz mono float32 audio; blocking, call from a worker thread."""
        if audio.size == 0:
            return ""
        check_off_loop("Whisper")
        with self._lock:
            if self._window is not None:
                heard = self._window.decode(audio, self.config.language or None)
                if heard is not None:
                    return heard.text if heard.no_speech_prob < _NO_SPEECH_THRESHOLD else ""
                if self._window.window_secs(audio.size) is not None:
                    self.full_window_fallbacks += 1
                    logger.debug("Short-window transcript not trusted; decoding the full window")
            return self._transcribe_full(audio)

    def _transcribe_full(self, audio: np.ndarray) -> str:
        """faster-whisper's own 30 s windows (greedy); call with the lock held."""
        segments, _info = self._model.transcribe(
            audio,
            language=self.config.language or None,
            beam_size=self.config.beam_size,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        parts = [s.text for s in segments if s.no_speech_prob < _NO_SPEECH_THRESHOLD]
        return " ".join(p.strip() for p in parts).strip()

    async def transcribe_async(self, audio: np.ndarray) -> str:
        """:meth:`transcribe` on the engine's executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.transcribe, audio)

    def warm_up(self) -> None:
        """Run one decode so the first real turn does not pay for lazy initialisation."""
        rng = np.random.default_rng(0)
        noise = (rng.standard_normal(16000) * 0.01).astype(np.float32)
        self.transcribe(noise)
        # And the full window, which an untrusted short-window decode falls back to.
        with self._lock:
            self._transcribe_full(noise)


@dataclass(frozen=True)
class _QueuedSegment:
    """A segment cut at the VAD's stop and waiting for ``run_stt``: its turn, the earlier audio
    it is decoded after, and its early guess (which heard no more than it)."""

    pcm: bytes
    turn: TurnSoFar
    context: bytes
    guess: Guess | None


class LocalWhisperSTTService(SegmentHandoffSTTService):
    """Per-session STT service: the segment is the user's turn, decoded by the shared engine.

    With ``STTConfig.early_transcript_secs`` the turn is transcribed as soon as the VAD's
    ``VoiceQuietFrame`` says the voice has been quiet that long, before the VAD's stop
    (``services.early_transcript``); an early transcript still current when it is done goes
    downstream as an ``EarlyTranscriptFrame``.

    A segment after the first of a user turn (the aggregator's ``UserStoppedSpeakingFrame``
    ends one) is decoded with the turn's earlier audio in front of it, and only its new words go
    out (``services.turn_transcript``).
    """

    def __init__(self, engine: WhisperEngine, **kwargs: Any) -> None:
        super().__init__(
            ttfs_p99_latency=engine.config.ttfs_p99_secs,
            settings=STTSettings(
                model=engine.config.model_dir.name, language=engine.config.language
            ),
            **kwargs,
        )
        self._engine = engine
        config = engine.config
        # The user turn the segments belong to, and the audio in front of the current segment.
        self._turn = TurnSoFar()
        self._segment_turn = self._turn
        self._context = b""
        # Each segment queued for ``run_stt``, by the identity of its bytes.
        self._queued: dict[int, _QueuedSegment] = {}
        self._early = (
            EarlyTranscriber(
                self._decode_in_context,
                quiet_secs=config.early_transcript_secs,
                create_task=self.create_task,
                on_text=self._announce_early_transcript,
            )
            if config.early_transcript_secs > 0
            else None
        )
        # Turns whose transcript was the early guess (no decode at the VAD's stop).
        self.early_transcripts_used = 0

    def can_generate_metrics(self) -> bool:
        """TTFB/processing metrics feed the latency breakdown."""
        return True

    async def _decode_in_context(self, pcm: bytes) -> str:
        """The current segment so far, after the turn's earlier audio (the early transcript)."""
        return await self._decode(self._context + pcm)

    async def _decode(self, pcm: bytes) -> str:
        """The engine's transcript of a segment (padded as every segment is), in a thread."""
        padded = pcm + self.segment_padding()
        samples = np.frombuffer(padded, dtype=np.int16).astype(np.float32) / 32768.0
        return await self._engine.transcribe_async(samples)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """pipecat's handling; the VAD's quiet frames start and drop the early transcript."""
        await super().process_frame(frame, direction)
        if isinstance(frame, UserStoppedSpeakingFrame):
            # The turn is over (it reaches the STT from the aggregator, upstream): the next
            # segment starts a turn of its own, and a guess made with this one's audio is stale.
            self._turn = self._segment_turn = TurnSoFar()
            self._context = b""
            if self._early is not None:
                self._early.speech_started()
            return
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._segment_turn = self._turn
            self._context = self._turn.context() if self._engine.config.turn_context else b""
        if self._early is None:
            return
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._early.speech_started()
        elif not self.user_speaking:
            return
        elif isinstance(frame, VoiceQuietFrame):
            self._early.voice_quiet(frame.quiet_secs, self.segment_audio)
        elif isinstance(frame, VoiceResumedFrame):
            self._early.voice_resumed()

    async def _announce_early_transcript(self, text: str) -> None:
        words = new_words(self._segment_turn.heard, text) if self._context else text
        if words:
            await self.push_frame(EarlyTranscriptFrame(text=words))

    async def on_segment(self, pcm: bytes) -> None:
        """The segment cut at the VAD's stop joins its turn, with the context it is decoded in;
        its early guess is kept beside it, when the guess heard no more than it did."""
        guess = self._early.take() if self._early is not None else None
        if guess is not None and guess.length > len(pcm):
            guess.task.cancel()
            guess = None
        self._queued[id(pcm)] = _QueuedSegment(pcm, self._segment_turn, self._context, guess)
        self._segment_turn.segments.append(pcm)

    async def on_segment_dropped(self) -> None:
        """No transcript for this segment: its guess is not wanted."""
        guess = self._early.take() if self._early is not None else None
        if guess is not None:
            guess.task.cancel()

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        """Transcribe one segment of 16-bit PCM off the event loop (or take its early guess)."""
        await self.start_processing_metrics()
        queued = self._queued.pop(id(audio), None)
        if queued is not None and queued.pcm is not audio:
            queued = None
        guess = queued.guess if queued is not None else None
        turn, context = (queued.turn, queued.context) if queued is not None else (None, b"")
        timeout = self._engine.config.timeout_secs
        try:
            # A decoder that never returns must not hold the turn forever. The thread cannot be
            # stopped; it finishes on its own and the next turn waits for the engine's lock.
            if guess is not None:
                self.early_transcripts_used += 1
            pending = guess.task if guess is not None else self._decode(context + audio)
            text = await asyncio.wait_for(pending, timeout)
        except TimeoutError:
            await self.stop_processing_metrics()
            yield ErrorFrame(error=f"speech recognition timed out after {timeout:g} s")
            return
        except Exception as error:  # noqa: BLE001 - any decoder failure ends this turn only
            await self.stop_processing_metrics()
            yield ErrorFrame(error=f"speech recognition failed: {error}")
            return
        await self.stop_processing_metrics()
        if turn is not None:
            if context:
                text = new_words(turn.heard, text)
            turn.heard.append(text)
        if text:
            logger.debug(f"Transcript{' (early)' if guess is not None else ''}: [{text}]")
            yield TranscriptionFrame(text, self.speaking_user_id, time_now_iso8601(), Language.EN)

    async def stop(self, frame: EndFrame) -> None:
        """Transcribe what is queued (pipecat), then drop an unused guess."""
        await super().stop(frame)
        self._drop_guesses()

    async def cancel(self, frame: CancelFrame) -> None:
        """Stop at once; guesses still running are not wanted."""
        await super().cancel(frame)
        self._drop_guesses()

    def _drop_guesses(self) -> None:
        if self._early is not None:
            self._early.close()
        for queued in self._queued.values():
            if queued.guess is not None:
                queued.guess.task.cancel()
        self._queued.clear()
