"""RELIABILITY row 14: degenerate audio at ingress never crashes the input side, never makes a
turn out of noise, and bad frames are repaired or dropped where they enter.

Each case goes through the session's own input chain with the real models (audio ingress with
RNNoise -> Whisper -> Silero VAD + Smart Turn v3), then a real question follows. That question
must still be heard and transcribed: before the ingress guard, one frame whose length was not a
whole number of samples ended pipecat's audio task and nothing was ever heard again.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.tests.utils import SleepFrame

from pipeline.config import AgentConfig
from services.stt import WhisperEngine
from tests.support.ingress import (
    AUDIO_IN_SAMPLE_RATE,
    frames_of,
    run_turns,
    silence,
    speech_pcm,
    spoken_turn,
    turn_chain,
)

RATE = AUDIO_IN_SAMPLE_RATE
# Faster than real time: VAD and Smart Turn count audio, not wall-clock time. Speech at twice
# real time; degenerate audio at ten times, which VAD still keeps up with (a backlog would
# delay its speech events past Whisper's pre-roll and cut the question's first word).
SPEED = 2.0
PACE_S = 0.02 / SPEED
NOISE_PACE_S = 0.002


def _naive_float_to_int16(samples: np.ndarray) -> np.ndarray:
    """What a careless client does with float audio: scale and cast, NaN and inf included."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (samples * 32767).astype(np.int16)


def _nan_inf() -> list[Frame]:
    bad = np.tile(np.array([np.nan, np.inf, -np.inf, 0.0], dtype=np.float32), RATE // 2)
    return frames_of(_naive_float_to_int16(bad), pace_s=NOISE_PACE_S)


def _clipping() -> list[Frame]:
    t = np.arange(3 * RATE) / RATE
    square = np.sign(np.sin(2 * np.pi * 440 * t)) * 32767
    rail = np.full(RATE, 32767)
    return frames_of(np.concatenate([square, rail]).astype(np.int16), pace_s=NOISE_PACE_S)


def _odd_lengths() -> list[Frame]:
    return [
        InputAudioRawFrame(audio=b"\x01" * size, sample_rate=RATE, num_channels=1)
        for size in (1, 321, 641, 3, 999) * 10
    ]


def _empty() -> list[Frame]:
    return [InputAudioRawFrame(audio=b"", sample_rate=RATE, num_channels=1) for _ in range(50)]


def _long_silence() -> list[Frame]:
    return frames_of(silence(30.0), pace_s=NOISE_PACE_S)


NOISE_CASES: dict[str, Callable[[], list[Frame]]] = {
    "30s-digital-silence": _long_silence,
    "clipping": _clipping,
    "nan-inf-as-int16": _nan_inf,
    "odd-byte-lengths": _odd_lengths,
    "empty-frames": _empty,
}


@pytest.mark.asyncio
@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(NOISE_CASES))
async def test_degenerate_input_makes_no_turn_and_the_next_question_is_heard(
    case: str, cpu_config: AgentConfig, whisper: WhisperEngine
) -> None:
    frames = NOISE_CASES[case]() + spoken_turn(speed=SPEED)
    turns = await run_turns(turn_chain(cpu_config, whisper), frames)
    assert turns.errors == []
    # Exactly one turn: the question. The degenerate audio before it made none.
    assert turns.vad_starts == 1 and turns.turn_ends == 1, turns
    assert "hello world" in turns.transcripts[-1].lower(), turns


def _speech_at(rate: int, channels: int = 1) -> list[Frame]:
    pcm = np.concatenate([silence(0.5, rate), speech_pcm(rate=rate), silence(1.2, rate)])
    if channels > 1:
        pcm = np.repeat(pcm, channels)
    return frames_of(pcm, rate=rate, channels=channels, pace_s=PACE_S)


def _speech_in_odd_chunks() -> list[Frame]:
    """The question cut at odd byte offsets, as a client splitting a byte stream blindly would."""
    data = np.concatenate([silence(0.5), speech_pcm(), silence(1.2)]).tobytes()
    frames: list[Frame] = []
    at, sizes = 0, itertools.cycle([641, 639])
    while at < len(data):
        size = next(sizes)
        chunk = data[at : at + size]
        frames += [
            InputAudioRawFrame(audio=chunk, sample_rate=RATE, num_channels=1),
            SleepFrame(sleep=PACE_S),
        ]
        at += size
    return frames


REPAIR_CASES: dict[str, Callable[[], list[Frame]]] = {
    "48kHz-labelled-48kHz": lambda: _speech_at(48_000),
    "8kHz-labelled-8kHz": lambda: _speech_at(8_000),
    "stereo": lambda: _speech_at(RATE, channels=2),
    "split-at-odd-bytes": _speech_in_odd_chunks,
}


@pytest.mark.asyncio
@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(REPAIR_CASES))
async def test_misformatted_speech_is_repaired_and_understood(
    case: str, cpu_config: AgentConfig, whisper: WhisperEngine
) -> None:
    turns = await run_turns(turn_chain(cpu_config, whisper), REPAIR_CASES[case]())
    assert turns.errors == []
    assert turns.vad_starts == 1 and turns.turn_ends == 1, turns
    assert "hello world" in turns.transcripts[-1].lower(), turns
