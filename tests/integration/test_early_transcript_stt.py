"""The early transcript (made once the voice went quiet) hears the same words as the whole turn.

Real Whisper, real recorded speech: each clip goes through the real LocalWhisperSTTService as 20 ms
frames between the VAD's start and stop, with the VAD's 200 ms stop window of room noise after
it. The transcript must come from the early guess and read as the whole segment does.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
from pipecat.frames.frames import (
    InputAudioRawFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.config import STTConfig
from services.stt import LocalWhisperSTTService, WhisperEngine
from tests.support.ingress import speech_pcm

CLIPS = (
    "hello_world.wav",
    "weather_question.wav",
    "turn_on_the_living_room_lamp.wav",
    "demo_instruct.wav",
)
RATE = 16000
FRAME = 320


class _Recording(WhisperEngine):
    """The real engine, noting how many samples each decode got."""

    def __init__(self, config: STTConfig) -> None:
        super().__init__(config)
        self.heard: list[int] = []
        self._calls = threading.Lock()

    def transcribe(self, audio: np.ndarray) -> str:
        with self._calls:
            self.heard.append(int(audio.size))
        return super().transcribe(audio)


@pytest.fixture(scope="module")
def engine() -> Iterator[_Recording]:
    try:
        paths = profile_paths("cpu", ModelStore(default_models_dir()))
    except ModelUnavailableError as error:
        pytest.fail(f"cpu models missing (run `just setup`): {error}")
    yield _Recording(replace(STTConfig(model_dir=paths.stt_dir), early_transcript_secs=0.04))


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", " ", text.lower()).split()


@pytest.mark.asyncio
@pytest.mark.parametrize("name", CLIPS)
async def test_the_early_transcript_hears_the_whole_turn(engine: _Recording, name: str) -> None:
    noise = (np.random.default_rng(3).standard_normal(RATE // 5) * 10).astype(np.int16)
    segment = np.concatenate([speech_pcm(name), noise])
    segment = segment[: len(segment) - len(segment) % FRAME]
    frames = [
        InputAudioRawFrame(audio=segment[i : i + FRAME].tobytes(), sample_rate=RATE, num_channels=1)
        for i in range(0, len(segment), FRAME)
    ]
    engine.heard.clear()
    down, _up = await run_test(
        LocalWhisperSTTService(engine),
        frames_to_send=[
            VADUserStartedSpeakingFrame(),
            *frames,
            VADUserStoppedSpeakingFrame(),
            SleepFrame(sleep=0.5),
        ],
    )
    texts = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    padding = RATE // 2
    # The transcript came from a guess shorter than the segment (made before the stop window
    # ended), and no second decode was needed.
    assert len(engine.heard) >= 1
    assert engine.heard[-1] < len(segment) + padding
    assert len(texts) == 1
    whole = engine.transcribe(
        np.concatenate([segment, np.zeros(padding, np.int16)]).astype(np.float32) / 32768.0
    )
    assert _words(texts[0]) == _words(whole), (texts[0], whole)
