"""The turn is transcribed once the VAD says the voice went quiet, and that guess is used only if
nothing but quiet audio followed it (services.early_transcript, in the real
LocalWhisperSTTService). The VAD's quiet frames are sent as pipeline.audio.voice_activity pushes
them, after the audio they describe."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from pipeline.config import STTConfig
from services.frames import EarlyTranscriptFrame, VoiceQuietFrame, VoiceResumedFrame
from services.stt import LocalWhisperSTTService

RATE = 16000
FRAME = 320  # 20 ms
PADDING = RATE // 2  # pipecat pads every segment with 0.5 s of silence


class _CountingWhisper:
    """Stands in for WhisperEngine: answers with the number of samples it was given."""

    def __init__(self, early_secs: float) -> None:
        self.config = STTConfig(model_dir=Path("whisper-test"), early_transcript_secs=early_secs)
        self.heard: list[int] = []
        self._lock = threading.Lock()

    def transcribe(self, audio: np.ndarray) -> str:
        with self._lock:
            self.heard.append(int(audio.size))
        return f"heard {audio.size}"

    async def transcribe_async(self, audio: np.ndarray) -> str:
        return await asyncio.to_thread(self.transcribe, audio)


def _voice(frames: int, seed: int = 1) -> list[Frame]:
    rng = np.random.default_rng(seed)
    return [
        InputAudioRawFrame(
            audio=(rng.standard_normal(FRAME) * 4000).astype(np.int16).tobytes(),
            sample_rate=RATE,
            num_channels=1,
        )
        for _ in range(frames)
    ]


def _quiet(frames: int) -> list[Frame]:
    # Room noise 50 dB under the voice: quiet for the gate, not digital silence.
    rng = np.random.default_rng(9)
    return [
        InputAudioRawFrame(
            audio=(rng.standard_normal(FRAME) * 12).astype(np.int16).tobytes(),
            sample_rate=RATE,
            num_channels=1,
        )
        for _ in range(frames)
    ]


def _went_quiet(frames: int) -> list[Frame]:
    """``frames`` of quiet audio after the voice, each followed by the VAD's quiet frame."""
    out: list[Frame] = []
    for i, frame in enumerate(_quiet(frames), start=1):
        out += [frame, VoiceQuietFrame(quiet_secs=i * FRAME / RATE)]
    return out


async def _run(engine: _CountingWhisper, frames: list[Frame]) -> list[Frame]:
    down, _up = await run_test(
        LocalWhisperSTTService(engine),  # type: ignore[arg-type]
        frames_to_send=[*frames, SleepFrame(sleep=0.3)],
    )
    return list(down)


async def _transcripts(engine: _CountingWhisper, frames: list[Frame]) -> list[str]:
    return [f.text for f in await _run(engine, frames) if isinstance(f, TranscriptionFrame)]


@pytest.mark.asyncio
async def test_the_guess_made_when_the_voice_went_quiet_is_the_transcript() -> None:
    engine = _CountingWhisper(early_secs=0.04)
    frames = [
        VADUserStartedSpeakingFrame(),
        *_voice(10),
        *_went_quiet(10),
        VADUserStoppedSpeakingFrame(),
    ]
    down = await _run(engine, frames)
    # One decode, started two quiet frames in: the voice and 40 ms of quiet, then the padding.
    guessed = 12 * FRAME + PADDING
    assert engine.heard == [guessed]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == [f"heard {guessed}"]
    # The guess was announced downstream too, for the LLM's read-ahead.
    early = [f.text for f in down if isinstance(f, EarlyTranscriptFrame)]
    assert early == [f"heard {guessed}"]


@pytest.mark.asyncio
async def test_a_guess_is_dropped_when_the_voice_comes_back() -> None:
    engine = _CountingWhisper(early_secs=0.04)
    frames = [
        VADUserStartedSpeakingFrame(),
        *_voice(10),
        *_went_quiet(4),  # a pause: a guess starts
        *_voice(6, seed=2),  # the user goes on
        VoiceResumedFrame(),
        *_went_quiet(10),
        VADUserStoppedSpeakingFrame(),
    ]
    down = await _run(engine, frames)
    texts = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    first, second = 12 * FRAME + PADDING, 22 * FRAME + PADDING
    # The first guess may not even have reached the decoder before it was dropped.
    assert engine.heard in ([first, second], [second])
    # The transcript is the second guess's, which heard the words after the pause.
    assert texts == [f"heard {second}"]
    # The dropped guess was never announced.
    assert [f.text for f in down if isinstance(f, EarlyTranscriptFrame)] == [f"heard {second}"]


@pytest.mark.asyncio
async def test_quiet_shorter_than_its_setting_starts_no_guess() -> None:
    engine = _CountingWhisper(early_secs=0.06)
    frames = [
        VADUserStartedSpeakingFrame(),
        *_voice(10),
        *_went_quiet(2),  # 40 ms: not yet
        *_voice(5, seed=3),
        VoiceResumedFrame(),
        VADUserStoppedSpeakingFrame(),
    ]
    texts = await _transcripts(engine, frames)
    assert engine.heard == [17 * FRAME + PADDING]
    assert texts == [f"heard {17 * FRAME + PADDING}"]


@pytest.mark.asyncio
async def test_a_turn_that_never_went_quiet_is_transcribed_at_the_stop() -> None:
    engine = _CountingWhisper(early_secs=0.04)
    frames = [VADUserStartedSpeakingFrame(), *_voice(10), VADUserStoppedSpeakingFrame()]
    texts = await _transcripts(engine, frames)
    assert engine.heard == [10 * FRAME + PADDING]
    assert texts == [f"heard {10 * FRAME + PADDING}"]


@pytest.mark.asyncio
async def test_off_it_transcribes_the_whole_segment_at_the_stop() -> None:
    engine = _CountingWhisper(early_secs=0.0)
    frames = [
        VADUserStartedSpeakingFrame(),
        *_voice(10),
        *_went_quiet(10),
        VADUserStoppedSpeakingFrame(),
    ]
    texts = await _transcripts(engine, frames)
    assert engine.heard == [20 * FRAME + PADDING]
    assert texts == [f"heard {20 * FRAME + PADDING}"]
