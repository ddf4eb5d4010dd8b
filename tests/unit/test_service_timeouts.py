"""Every await on a model service has a bound: a hung Whisper or Kokoro ends the turn with an
error frame (which the failure responder turns into the spoken apology) instead of silence.

The services are the real ones; the engines behind them hang in their worker thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from services.stt import LocalWhisperSTTService
from services.tts import KokoroEngine, LocalKokoroTTSService
from tests.support.kokoro_stand_in import KokoroStandIn, kokoro_config

TIMEOUT_S = 0.3


class _HungWhisper:
    """A Whisper engine whose decoder blocks until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.config = SimpleNamespace(
            ttfs_p99_secs=0.5,
            model_dir=SimpleNamespace(name="whisper-hung"),
            language="en",
            timeout_secs=TIMEOUT_S,
            early_transcript_secs=0.0,
            turn_context=True,
        )

    def transcribe(self, audio: np.ndarray) -> str:
        self.release.wait(10)
        return "too late"

    async def transcribe_async(self, audio: np.ndarray) -> str:
        return await asyncio.to_thread(self.transcribe, audio)


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_a_hung_transcription_ends_the_turn_with_an_error() -> None:
    engine = _HungWhisper()
    stt = LocalWhisperSTTService(engine)  # type: ignore[arg-type]
    audio = (np.random.default_rng(2).standard_normal(3200) * 3000).astype(np.int16).tobytes()
    started = time.monotonic()
    try:
        _down, up = await run_test(
            stt,
            frames_to_send=[
                VADUserStartedSpeakingFrame(),
                InputAudioRawFrame(audio=audio, sample_rate=16000, num_channels=1),
                VADUserStoppedSpeakingFrame(),
                SleepFrame(sleep=TIMEOUT_S + 0.5),
            ],
        )
    finally:
        engine.release.set()
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert errors == [f"speech recognition timed out after {TIMEOUT_S:g} s"]
    assert time.monotonic() - started < 5


class _HungKokoro(KokoroStandIn):
    """A Kokoro engine that synthesizes its first piece, then never returns from another."""

    config = kokoro_config(TIMEOUT_S)

    def __init__(self) -> None:
        self.calls = 0

    async def synthesize_async(self, text: str) -> np.ndarray:
        self.calls += 1
        if self.calls > 1:
            await _forever()
        return await super().synthesize_async(text)


async def _forever() -> None:
    await asyncio.Event().wait()


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_a_hung_synthesis_ends_the_utterance_with_an_error() -> None:
    tts = LocalKokoroTTSService(_HungKokoro())  # type: ignore[arg-type]
    down, up = await run_test(
        tts,
        frames_to_send=[
            TTSSpeakFrame("Hello there."),
            TTSSpeakFrame("How are you?"),
            SleepFrame(sleep=TIMEOUT_S + 0.7),
        ],
    )
    assert any(isinstance(f, TTSAudioRawFrame) for f in down), "the first piece was not played"
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert errors[0] == f"speech synthesis timed out after {TIMEOUT_S:g} s", errors
    # pipecat adds its own word for the piece that had no audio; nothing else went wrong.
    assert all(e == errors[0] or e.endswith("completed with no audio") for e in errors), errors


# pipecat ends an audio context that waits 3 s for its next piece (its default).
SLOW_FIRST_PIECE_S = 3.5


class _SlowKokoro(KokoroStandIn):
    """A Kokoro engine as slow as the real one on a loaded 2-core machine, inside its bound."""

    config = kokoro_config(6.0)

    async def synthesize_async(self, text: str) -> np.ndarray:
        await asyncio.sleep(SLOW_FIRST_PIECE_S)
        return await super().synthesize_async(text)


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_a_slow_first_piece_is_no_error() -> None:
    """A piece slower than pipecat's 3 s context wait, inside the synthesis bound, is not
    "completed with no audio": that reached the page as an error, and three in a row made
    pipecat mark the TTS unusable for the session."""
    tts = LocalKokoroTTSService(_SlowKokoro())  # type: ignore[arg-type]
    down, up = await run_test(
        tts,
        frames_to_send=[
            LLMFullResponseStartFrame(),
            LLMTextFrame("The weather in Paris is warm today."),
            LLMFullResponseEndFrame(),
            SleepFrame(sleep=SLOW_FIRST_PIECE_S + 1.0),
        ],
    )
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert errors == [], errors
    assert any(isinstance(f, TTSAudioRawFrame) for f in down), "the piece was not played"


PIECE_S = 0.6


class _SharedKokoro(KokoroStandIn):
    """One engine for two sessions whose model synthesizes one piece at a time, each inside
    the bound, two together past it (the engine's own line, KokoroEngine.in_line, is real)."""

    config = kokoro_config(1.0, queue_timeout_secs=10.0)
    in_line = KokoroEngine.in_line

    def __init__(self) -> None:
        self._line = asyncio.Lock()
        self._model = asyncio.Lock()

    async def synthesize_async(self, text: str) -> np.ndarray:
        async with self._model:
            await asyncio.sleep(PIECE_S)
        return await super().synthesize_async(text)


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_a_piece_waiting_for_another_sessions_is_not_timed_out() -> None:
    """Two sessions speak at once: the second piece waits a whole synthesis for the first, and
    its bound counts only its own (a caller heard nothing when the wait counted)."""
    engine = _SharedKokoro()

    async def session() -> list[str]:
        tts = LocalKokoroTTSService(engine)  # type: ignore[arg-type]
        down, up = await run_test(
            tts, frames_to_send=[TTSSpeakFrame("Hello there."), SleepFrame(sleep=2 * PIECE_S + 0.5)]
        )
        assert any(isinstance(f, TTSAudioRawFrame) for f in down), "no audio"
        return [f.error for f in up if isinstance(f, ErrorFrame)]

    assert await asyncio.gather(session(), session()) == [[], []]
