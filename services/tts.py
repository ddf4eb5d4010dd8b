"""Text to speech: Kokoro-82M through kokoro-onnx, loaded once per process.

pipecat's ``KokoroTTSService`` builds its own model per instance (and downloads it when no
paths are given). Here one :class:`KokoroEngine` is shared by every session; each session
gets a light :class:`LocalKokoroTTSService` that streams the shared engine's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import Executor
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort
from kokoro_onnx import Kokoro
from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.processors.aggregators.llm_text_processor import LLMTextProcessor
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TextAggregationMode, TTSService

from pipeline.config import TTSConfig
from services.clause_chunker import ClauseTextAggregator
from services.off_loop import check_off_loop

KOKORO_SAMPLE_RATE = 24000
# Kokoro starts each utterance with 20-50 ms of near silence; nobody hears it, but the first
# audible sample waits for it.
_ONSET_THRESHOLD_DBFS = -55.0
_ONSET_KEEP_SECS = 0.005
# Pieces arrive a clause at a time and are glued end to end; put back the pause that the
# punctuation asks for (kokoro-onnx's own defaults between its batches).
_PAUSE_AFTER = {".": 0.25, "!": 0.25, "?": 0.25, ",": 0.1, ";": 0.1, ":": 0.1}


def trim_leading_quiet(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Drop the near-silent lead-in before the first audible 1 ms block (keeping 5 ms)."""
    block = max(1, sample_rate // 1000)
    usable = len(samples) - len(samples) % block
    if usable == 0:
        return samples
    energy = np.sqrt(np.mean(samples[:usable].reshape(-1, block) ** 2, axis=1))
    loud = np.flatnonzero(20 * np.log10(energy + 1e-12) > _ONSET_THRESHOLD_DBFS)
    if loud.size == 0:
        return samples
    start = max(0, int(loud[0]) * block - int(_ONSET_KEEP_SECS * sample_rate))
    return samples[start:]


def pause_after(text: str) -> float:
    """Seconds of silence that the final punctuation of ``text`` calls for."""
    stripped = text.rstrip()
    return _PAUSE_AFTER.get(stripped[-1], 0.0) if stripped else 0.0


class KokoroEngine:
    """One Kokoro ONNX session and its voices, shared by all sessions."""

    # Models constructed in this process (reported by /health: 1 when shared as intended).
    loads: ClassVar[int] = 0

    def __init__(self, config: TTSConfig, executor: Executor | None = None) -> None:
        """``executor`` runs the syntheses (pipeline.ops.compute_priority); None: asyncio's."""
        type(self).loads += 1
        self.config = config
        self.executor = executor
        # One synthesis at a time across sessions (see synthesize): the lock holds the model,
        # the line orders the sessions' pieces so that a piece's timeout is its own synthesis,
        # not the wait behind another session's.
        self._synthesis_lock = threading.Lock()
        self._line = asyncio.Lock()
        started = time.perf_counter()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if config.threads:
            options.intra_op_num_threads = config.threads
        # Worker threads that sleep between operators wake late whenever the audio path (above
        # the models' priority) took their core for a moment, and the other thread waits for
        # them at every operator: on two cores with a call open a piece took 50 % longer.
        # Spinning, onnxruntime's default, cut 7-14 % per piece, loaded or not. The LLM server,
        # generating beside it, runs below Kokoro anyway (pipeline.config.DEFAULT_LLM_NICE).
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if config.spin_threads else "0"
        )
        session = ort.InferenceSession(
            str(config.model_path), sess_options=options, providers=list(config.providers)
        )
        self.kokoro = Kokoro.from_session(session, str(config.voices_path))
        if config.voice not in self.kokoro.voices:
            voices = ", ".join(self.kokoro.get_voices()[:12])
            raise ValueError(
                f"Kokoro voice '{config.voice}' is not in the voices file ({voices}, ...)"
            )
        # Fixed phrases (greeting, apologies) rendered once, so they play without synthesis.
        self._phrases: dict[tuple[str, str], np.ndarray] = {}
        self.load_secs = time.perf_counter() - started
        logger.info(f"Kokoro loaded in {self.load_secs:.2f} s ({session.get_providers()[0]})")

    def synthesize(self, text: str, voice: str | None = None) -> np.ndarray:
        """Blocking synthesis of a whole text to float32 at 24 kHz; call from a worker thread."""
        # One synthesis at a time across sessions: two at once on one onnxruntime session, whose
        # intra-op threads spin, stalled here (a second session's 18-word answer passed the 15 s
        # timeout while the first session's took 6 s), and on two cores they are no faster
        # together than one after the other.
        check_off_loop("Kokoro")
        with self._synthesis_lock:
            audio, _ = self.kokoro.create(
                text, voice=voice or self.config.voice, speed=self.config.speed, lang="en-us"
            )
        return audio

    @contextlib.asynccontextmanager
    async def in_line(self) -> AsyncIterator[None]:
        """Wait for the syntheses ahead (TimeoutError after ``queue_timeout_secs``), then hold
        the engine for one :meth:`synthesize_async`."""
        async with asyncio.timeout(self.config.queue_timeout_secs):
            await self._line.acquire()
        try:
            yield
        finally:
            self._line.release()

    async def synthesize_async(self, text: str) -> np.ndarray:
        """:meth:`synthesize` in the configured voice, on the engine's executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.synthesize, text)

    def warm_up(self, phrases: tuple[str, ...] = ()) -> None:
        """Initialise lazily built state, then pre-render the fixed ``phrases``."""
        self.synthesize("Hello there.")
        self.prerender(phrases)

    def prerender(self, phrases: tuple[str, ...], stop: threading.Event | None = None) -> int:
        """Render the ``phrases`` not rendered yet, until ``stop`` is set; returns how many.

        Blocking: call from a worker thread.
        """
        rendered = 0
        for phrase in phrases:
            if stop is not None and stop.is_set():
                break
            key = (phrase.strip(), self.config.voice)
            if key not in self._phrases:
                audio = trim_leading_quiet(self.synthesize(phrase), self.config.sample_rate)
                self._phrases[key] = audio
                rendered += 1
        return rendered

    def prerendered(self, text: str) -> np.ndarray | None:
        """The pre-rendered audio of a fixed phrase in the configured voice, if any."""
        return self._phrases.get((text.strip(), self.config.voice))


def clause_text_processor() -> LLMTextProcessor:
    """pipecat's slot between the LLM and the TTS for how answers are cut: by clause
    (services.clause_chunker), so the TTS gets its first piece after a few words."""
    return LLMTextProcessor(text_aggregator=ClauseTextAggregator())


# How much longer than a synthesis may take an audio context waits for its next piece.
STOP_FRAME_MARGIN_S = 1.0


class LocalKokoroTTSService(TTSService):
    """Per-session TTS service streaming audio from the shared :class:`KokoroEngine`.

    It speaks the pieces it is given: the LLM's text arrives cut into clauses rather than
    pipecat's sentences (:func:`clause_text_processor`, ahead of it in the pipeline), so the
    first audio waits for a few words.
    """

    def __init__(self, engine: KokoroEngine, **kwargs: Any) -> None:
        super().__init__(
            text_aggregation_mode=TextAggregationMode.SENTENCE,
            sample_rate=engine.config.sample_rate,
            push_start_frame=True,
            push_stop_frames=True,
            # pipecat ends an audio context that waits longer than this for its next piece,
            # reports "completed with no audio" to the page as an error, and after three in a
            # row marks the service unusable for the session (a mute bot). Kokoro's first piece
            # took 3-8 s on a loaded 2-core machine, past pipecat's 3 s default. Contexts end
            # explicitly when the turn does; this is only the backstop for a synthesis that
            # hangs, which run_tts bounds itself (timeout_secs) and answers with an error.
            stop_frame_timeout_s=engine.config.timeout_secs + STOP_FRAME_MARGIN_S,
            settings=TTSSettings(model="kokoro-v1.0", voice=engine.config.voice, language="en-us"),
            **kwargs,
        )
        self._engine = engine

    def can_generate_metrics(self) -> bool:
        """TTFB (time to first audio) feeds the latency breakdown."""
        return True

    def _audio_frame(self, samples: np.ndarray, context_id: str) -> TTSAudioRawFrame:
        # NaN or infinity from the model would turn into full-scale clicks when cast to int16.
        finite = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
        pcm = (np.clip(finite, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        return TTSAudioRawFrame(
            audio=pcm, sample_rate=self.sample_rate, num_channels=1, context_id=context_id
        )

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Synthesize ``text`` (a pre-rendered phrase plays as it is), then its pause."""
        config = self._engine.config
        try:
            await self.start_tts_usage_metrics(text)
            cached = self._engine.prerendered(text)
            if cached is not None:
                await self.stop_ttfb_metrics()
                yield self._audio_frame(cached, context_id)
            else:
                async for frame in self._synthesized(text, context_id):
                    yield frame
            pause = pause_after(text)
            if pause:
                silence = np.zeros(int(pause * self.sample_rate), dtype=np.float32)
                yield self._audio_frame(silence, context_id)
        except TimeoutError:
            yield ErrorFrame(error=f"speech synthesis timed out after {config.timeout_secs:g} s")
        except Exception as error:  # noqa: BLE001 - a synthesis failure ends this utterance only
            yield ErrorFrame(error=f"speech synthesis failed: {error}")
        finally:
            await self.stop_ttfb_metrics()

    async def _synthesized(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Kokoro's audio for ``text``, synthesized in one call on the engine's threads.

        The clause chunker keeps an answer's pieces to 30 words, well inside one Kokoro batch
        (510 phonemes), so there is nothing to stream within a piece; kokoro-onnx's own
        streaming would run its batches on asyncio's shared threads, not the model threads
        (pipeline.ops.compute_priority).
        """
        config = self._engine.config
        # A synthesis that never returns must not leave the bot silent mid-answer; the bound is
        # this piece's own synthesis, after the other sessions' pieces ahead of it.
        async with self._engine.in_line():
            samples = await asyncio.wait_for(
                self._engine.synthesize_async(text), config.timeout_secs
            )
        await self.stop_ttfb_metrics()
        yield self._audio_frame(trim_leading_quiet(samples, config.sample_rate), context_id)
