"""The session's input side without WebRTC: audio frames in, turns out, with the real models.

``turn_chain`` builds what :func:`pipeline.session.build_worker` puts between the transport and
the LLM: the audio ingress (RNNoise), Whisper and the user aggregator running Silero VAD and
Smart Turn v3, all from the same factories and config. A test pushes ``InputAudioRawFrame`` s
(paced with ``SleepFrame`` s) through ``pipecat.tests.utils.run_test`` into ``FeedInput``, an
input transport that takes them down the transport's own audio path, and reads the turns from
the frames that come out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soxr
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    LLMContextFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transports.base_transport import TransportParams

from pipeline.bench.hearing import FeedInput
from pipeline.config import AgentConfig
from pipeline.session import (
    AUDIO_IN_SAMPLE_RATE,
    input_steps,
    user_turn_aggregators,
)
from services.stt import LocalWhisperSTTService, WhisperEngine
from tests.support.conversation import fixture_clip

FRAME_MS = 20


class AudioProbe(FrameProcessor):
    """Counts the audio frames that get through, and when the last one did."""

    def __init__(self) -> None:
        super().__init__()
        self.frames = 0
        self.bytes = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Count audio, pass everything on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.frames += 1
            self.bytes += len(frame.audio)
        await self.push_frame(frame, direction)


def turn_chain(
    config: AgentConfig,
    engine: WhisperEngine,
    *,
    before: Sequence[FrameProcessor] = (),
    probe: AudioProbe | None = None,
) -> Pipeline:
    """``before`` -> input transport -> audio ingress -> [probe] -> VAD -> Whisper -> user
    aggregator."""
    transport = FeedInput(
        TransportParams(audio_in_enabled=True, audio_in_sample_rate=AUDIO_IN_SAMPLE_RATE)
    )
    ingress, *after_ingress = input_steps(config)
    processors: list[FrameProcessor] = [*before, transport, ingress]
    if probe is not None:
        processors.append(probe)
    processors += [
        *after_ingress,
        LocalWhisperSTTService(engine),
        user_turn_aggregators(config).user(),
    ]
    return Pipeline(processors)


def speech_pcm(name: str = "hello_world.wav", rate: int = AUDIO_IN_SAMPLE_RATE) -> npt.NDArray:
    """A speech fixture as int16 at ``rate``."""
    clip, clip_rate = fixture_clip(name)
    resampled = soxr.resample(clip, clip_rate, rate) if clip_rate != rate else clip
    return np.clip(np.rint(resampled * 32767), -32768, 32767).astype(np.int16)


def silence(seconds: float, rate: int = AUDIO_IN_SAMPLE_RATE) -> npt.NDArray[np.int16]:
    """Digital silence."""
    return np.zeros(int(seconds * rate), dtype=np.int16)


def frames_of(
    pcm: npt.NDArray[np.int16],
    *,
    rate: int = AUDIO_IN_SAMPLE_RATE,
    channels: int = 1,
    pace_s: float | None = FRAME_MS / 1000,
    frame_ms: int = FRAME_MS,
) -> list[Frame]:
    """``pcm`` cut into frames of ``frame_ms``, each followed by a sleep (real time by default)."""
    step = rate * frame_ms // 1000 * channels
    frames: list[Frame] = []
    for start in range(0, len(pcm), step):
        chunk = pcm[start : start + step].tobytes()
        frames.append(InputAudioRawFrame(audio=chunk, sample_rate=rate, num_channels=channels))
        if pace_s:
            frames.append(SleepFrame(sleep=pace_s))
    return frames


def spoken_turn(name: str = "hello_world.wav", speed: float = 1.0) -> list[Frame]:
    """A question, ``speed`` times real time: 0.5 s of silence, the clip, 1.2 s of silence."""
    pcm = np.concatenate([silence(0.5), speech_pcm(name), silence(1.2)])
    return frames_of(pcm, pace_s=FRAME_MS / 1000 / speed)


@dataclass(frozen=True)
class Turns:
    """What came out of the chain."""

    vad_starts: int
    vad_stops: int
    turn_ends: int  # user turns handed to the LLM (the aggregated context)
    transcripts: list[str]
    errors: list[str]


async def run_turns(pipeline: Pipeline, frames: Sequence[Frame], settle_s: float = 1.5) -> Turns:
    """Push ``frames``, wait ``settle_s`` for the last turn to end, and summarise."""
    down, up = await run_test(
        pipeline,
        frames_to_send=[*frames, SleepFrame(sleep=settle_s)],
        pipeline_params=PipelineParams(audio_in_sample_rate=AUDIO_IN_SAMPLE_RATE),
        start_timeout=10,
    )
    transcripts = [
        str(message.get("content", ""))
        for frame in down
        if isinstance(frame, LLMContextFrame)
        for message in frame.context.get_messages()
        if isinstance(message, dict) and message.get("role") == "user"
    ]
    return Turns(
        vad_starts=sum(isinstance(f, VADUserStartedSpeakingFrame) for f in down),
        vad_stops=sum(isinstance(f, VADUserStoppedSpeakingFrame) for f in down),
        turn_ends=sum(isinstance(f, LLMContextFrame) for f in down),
        transcripts=transcripts,
        errors=[f.error for f in [*down, *up] if isinstance(f, ErrorFrame)],
    )
