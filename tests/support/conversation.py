"""Helpers for tests that talk to a real agent through a `LoopbackCaller`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soxr

from models.paths import profile_paths
from models.store import ModelStore, default_models_dir
from pipeline.bench.client.audio_clip import last_voiced_sample, load_wav
from pipeline.bench.client.loopback_caller import LoopbackCaller
from pipeline.config import STTConfig
from services.stt import WhisperEngine

# How long a test waits for the agent's voice (a greeting, an answer, a timer's ring): a bound
# on a hang, not speed. With two test workers, or other work on two cores, an answer has taken
# over 30 s to start.
HANG_BOUND_S = 60.0
# Bounds a wait for the end of an answer's synthesis (a hang, not speed).
STOP_BOUND_S = 60.0
# The repository carries its own recordings (licences in SOURCES.md beside them).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"


def fixture_clip(name: str) -> tuple[npt.NDArray[np.float32], int]:
    """A recorded speech fixture as mono float32 and its rate."""
    path = FIXTURES / name
    if not path.exists():
        pytest.fail(f"missing speech fixture {path}")
    return load_wav(path)


@dataclass(frozen=True)
class Reply:
    """What the bot said after one user turn, as the caller heard it."""

    latency_s: float
    audio: npt.NDArray[np.float32]
    rate: int
    speech_end: float
    first_voice: float
    # When its voice ended (the last voiced block before the quiet that closed it).
    ended: float
    # When the server's bot-tts-stopped for this answer arrived (None: it never came in time).
    tts_stopped_at: float | None = None


async def wait_out_greeting(caller: LoopbackCaller, started: float) -> None:
    """Let the greeting play to the end, as a person would before talking."""
    greeting = await caller.wait_for_voice(started, timeout=HANG_BOUND_S)
    await caller.wait_for_silence(1.0, timeout=60, after=greeting)


async def ask(
    caller: LoopbackCaller,
    clip: npt.NDArray[np.float32],
    rate: int,
    *,
    answer_timeout: float = HANG_BOUND_S,
    trailing_s: float = 2.5,
    quiet_s: float = 1.5,
) -> Reply:
    """Speak ``clip`` in real time, then wait for the whole spoken reply.

    The reply is over once the server has finished synthesizing it and ``quiet_s`` of silence
    followed.
    """
    trailing = np.zeros(int(rate * trailing_s), dtype=np.float32)
    sent_end = await caller.say(np.concatenate([clip, trailing]), rate)
    last = last_voiced_sample(clip, rate)
    assert last is not None, "the clip has no voiced sample"
    speech_end = sent_end - trailing_s - (len(clip) - last) / rate
    first_voice = await caller.wait_for_voice(speech_end, timeout=answer_timeout)
    # Over when the server says the answer's speech has all been synthesized (bot-tts-stopped,
    # at the end of its audio context), then went quiet: a state, not a length of silence. A
    # pause between two clauses of one answer passed 1.5 s on busy cores, and the reply was cut
    # ("It is sunny and warm" without "in Paris today").
    # This turn's: the stop that follows its speech's start, never one of an earlier answer
    # that reached the caller late.
    quiet_from = first_voice
    stopped_at: float | None = None
    with contextlib.suppress(TimeoutError):
        started = await caller.wait_for_message(
            "bot-tts-started", timeout=STOP_BOUND_S, after=speech_end
        )
        stopped = await caller.wait_for_message(
            "bot-tts-stopped", timeout=STOP_BOUND_S, after=started.received_at
        )
        # The stop message overtakes the audio of the last piece (the data channel does not
        # wait for the audio's pacing): when that piece took long to synthesize, the silence
        # before it was already 1.5 s old when the message came, and the reply was cut ("It
        # is sunny and warm" without "in Paris today"). Quiet counts from the message on.
        stopped_at = stopped.received_at
        quiet_from = max(first_voice, stopped_at)
    ended = await caller.wait_for_silence(quiet_s, timeout=90, after=quiet_from)
    audio, audio_rate = caller.received_audio(first_voice - 0.2)
    return Reply(
        first_voice - speech_end, audio, audio_rate, speech_end, first_voice, ended, stopped_at
    )


@functools.cache
def _whisper() -> WhisperEngine:
    paths = profile_paths("cpu", ModelStore(default_models_dir()))
    return WhisperEngine(STTConfig(model_dir=paths.stt_dir))


def transcribe(audio: npt.NDArray[np.float32], rate: int) -> str:
    """What the cpu profile's Whisper hears in ``audio``."""
    samples = soxr.resample(audio, rate, 16000).astype(np.float32)
    return _whisper().transcribe(samples)


async def hear(audio: npt.NDArray[np.float32], rate: int) -> str:
    """:func:`transcribe` in a thread, for a test in a call: its event loop keeps the call
    alive meanwhile (microphone frames, pings, the bot's audio). On the loop, a transcription
    on busy cores stalled them for seconds, and the server counts a silent peer as gone."""
    return await asyncio.to_thread(transcribe, audio, rate)


def padded_question_wav(
    path: Path, name: str, *, lead_s: float, trail_s: float, rate: int = 48000
) -> float:
    """Write fixture ``name`` between ``lead_s`` and ``trail_s`` of silence as 16-bit mono PCM
    at ``rate`` (what a fake microphone reads); returns where in the file the question ends."""
    clip, clip_rate = fixture_clip(name)
    clip = soxr.resample(clip, clip_rate, rate).astype(np.float32)
    lead = np.zeros(int(lead_s * rate), dtype=np.float32)
    trail = np.zeros(int(trail_s * rate), dtype=np.float32)
    pcm = (np.clip(np.concatenate([lead, clip, trail]), -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return lead_s + len(clip) / rate
