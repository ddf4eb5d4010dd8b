"""RELIABILITY row 12: STT or TTS failing mid-turn gives a clear error; the session survives.

The services are the real ones with a fault-injecting engine behind them; the responder is
tested against a recording worker (its apology and its message both go down the pipeline).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    OutputTransportMessageUrgentFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from pipeline.ops.fallback import APOLOGIES, FailureResponder
from services.stt import LocalWhisperSTTService
from services.tts import LocalKokoroTTSService
from tests.support.kokoro_stand_in import KokoroStandIn


class _FlakyWhisper:
    """Stands in for WhisperEngine: fails the first call, then transcribes "hello"."""

    def __init__(self) -> None:
        self.calls = 0
        self.config = type(
            "C",
            (),
            {
                "ttfs_p99_secs": 0.5,
                "model_dir": _Dir(),
                "language": "en",
                "timeout_secs": 5.0,
                "early_transcript_secs": 0.0,
                "turn_context": True,
            },
        )

    def transcribe(self, audio: np.ndarray) -> str:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("injected decoder failure")
        return "hello"

    async def transcribe_async(self, audio: np.ndarray) -> str:
        return self.transcribe(audio)


class _Dir:
    name = "whisper-test"


def _turn() -> list[Frame]:
    audio = (np.random.default_rng(1).standard_normal(3200) * 3000).astype(np.int16).tobytes()
    return [
        VADUserStartedSpeakingFrame(),
        InputAudioRawFrame(audio=audio, sample_rate=16000, num_channels=1),
        VADUserStoppedSpeakingFrame(),
        SleepFrame(sleep=0.5),
    ]


@pytest.mark.asyncio
async def test_stt_failure_yields_an_error_and_the_next_turn_is_transcribed() -> None:
    engine = _FlakyWhisper()
    stt = LocalWhisperSTTService(engine)  # type: ignore[arg-type]
    down, up = await run_test(stt, frames_to_send=[*_turn(), *_turn()])
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and "speech recognition failed" in errors[0].error
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["hello"]
    assert engine.calls == 2


class _BrokenKokoro(KokoroStandIn):
    """Stands in for the Kokoro engine: synthesis always raises."""

    async def synthesize_async(self, text: str) -> Any:
        raise RuntimeError("injected synthesis failure")


@pytest.mark.asyncio
async def test_tts_failure_yields_an_error_frame() -> None:
    tts = LocalKokoroTTSService(_BrokenKokoro())  # type: ignore[arg-type]
    _down, up = await run_test(tts, frames_to_send=[TTSSpeakFrame("Hello."), SleepFrame(sleep=0.3)])
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].error == "speech synthesis failed: injected synthesis failure"


class _Worker:
    def __init__(self) -> None:
        self.queued: list[Frame] = []
        self.handlers: dict[str, Any] = {}

    def add_event_handler(self, name: str, handler: Any) -> None:
        self.handlers[name] = handler

    async def queue_frames(self, frames: list[Frame]) -> None:
        self.queued.extend(frames)

    @property
    def spoken(self) -> list[str]:
        return [f.text for f in self.queued if isinstance(f, TTSSpeakFrame)]

    @property
    def sent(self) -> list[dict[str, Any]]:
        """The data-channel messages, as they go down the pipeline to the output transport."""
        return [f.message for f in self.queued if isinstance(f, OutputTransportMessageUrgentFrame)]


@pytest.mark.asyncio
async def test_responder_apologises_for_stt_and_llm_but_only_reports_tts() -> None:
    worker = _Worker()
    FailureResponder(worker, "s1")  # type: ignore[arg-type]
    handler = worker.handlers["on_pipeline_error"]

    stt = LocalWhisperSTTService(_FlakyWhisper())  # type: ignore[arg-type]
    await handler(worker, ErrorFrame(error="boom", processor=stt))
    assert worker.spoken == [APOLOGIES["stt"]]
    assert worker.sent[-1]["data"]["stage"] == "stt"

    # A second error straight after the first (same failure) gets no second apology.
    await handler(worker, ErrorFrame(error="boom again", processor=stt))
    assert len(worker.spoken) == 1

    tts = LocalKokoroTTSService(_BrokenKokoro())  # type: ignore[arg-type]
    await handler(worker, ErrorFrame(error="no voice", processor=tts))
    assert len(worker.spoken) == 1, "a broken TTS cannot speak its own apology"
    assert worker.sent[-1]["type"] == "error"
    assert worker.sent[-1]["data"]["stage"] == "tts"
