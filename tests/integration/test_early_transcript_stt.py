"""The early transcript (made once the voice went quiet) hears the same words as the whole turn.

Real Whisper, real Silero, real recorded speech: each clip, with room noise before and after it,
goes as 20 ms frames through the pipeline's VAD step (pipeline.audio.voice_activity: speech
start and stop, and the voice going quiet) and the real LocalWhisperSTTService. The transcript
must come from the early guess and read as the whole clip does.
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncGenerator, Iterator
from dataclasses import replace

import numpy as np
import pytest
from pipecat.frames.frames import Frame, InputAudioRawFrame, TranscriptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.tests.utils import SleepFrame, run_test

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.config import STTConfig, TurnConfig
from pipeline.session import voice_activity
from services.frames import VoiceQuietFrame
from services.stt import LocalWhisperSTTService, WhisperEngine
from tests.support.ingress import speech_pcm

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


class _Watched(LocalWhisperSTTService):
    """The real STT service, noting each turn's segment, whether its early guess was its
    transcript, and the transcript."""

    def __init__(self, engine: WhisperEngine) -> None:
        super().__init__(engine)
        self.turns: list[tuple[bytes, bool, str]] = []

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        used = self.early_transcripts_used
        async for frame in super().run_stt(audio):
            if isinstance(frame, TranscriptionFrame):
                # The counter goes up before the transcript when the guess was it.
                self.turns.append((audio, self.early_transcripts_used > used, frame.text))
            yield frame


# demo_instruct.wav is not here: the VAD's 200 ms stop splits its continuous speech into about
# twenty turns, and where a cut falls inside a phrase the onset of the next word is in the
# segment's quiet tail, which the whole segment's decode may hear and the guess does not.
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("name", "early"),
    [
        ("hello_world.wav", True),
        ("weather_question.wav", True),
        # "lamp" trails off under Silero's threshold while its energy is still high: the VAD
        # stops before its gate hears the voice go quiet, and the turn is decoded at the stop.
        ("turn_on_the_living_room_lamp.wav", False),
    ],
)
async def test_the_early_transcript_hears_the_whole_turn(
    engine: _Recording, name: str, early: bool
) -> None:
    rng = np.random.default_rng(3)
    speech = speech_pcm(name)
    before, after = ((rng.standard_normal(n) * 10).astype(np.int16) for n in (RATE // 2, RATE))
    audio = np.concatenate([before, speech, after])
    audio = audio[: len(audio) - len(audio) % FRAME]
    frames = [
        InputAudioRawFrame(audio=audio[i : i + FRAME].tobytes(), sample_rate=RATE, num_channels=1)
        for i in range(0, len(audio), FRAME)
    ]
    stt = _Watched(engine)
    down, _up = await run_test(
        Pipeline([voice_activity(TurnConfig()), stt]),
        frames_to_send=[*frames, SleepFrame(sleep=0.5)],
    )
    assert any(isinstance(f, VoiceQuietFrame) for f in down)
    assert stt.turns
    assert any(used for _, used, _ in stt.turns) == early, stt.turns
    padding = np.zeros(RATE // 2, np.int16)
    for segment, used, text in stt.turns:
        if not used:
            continue
        # The guess missed only the quiet end of its segment: the words are the same.
        pcm = np.concatenate([np.frombuffer(segment, np.int16), padding])
        whole = engine.transcribe(pcm.astype(np.float32) / 32768.0)
        assert _words(text) == _words(whole), (text, whole)
