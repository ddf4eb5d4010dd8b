"""RNNoise feeds the VAD; the frames after the VAD step carry the microphone's own audio."""

from __future__ import annotations

import numpy as np
import pytest
from pipecat.frames.frames import Frame, InputAudioRawFrame, TextFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from pipeline.audio.ingress import AudioIngress
from pipeline.audio.microphone_audio import MicrophoneAudioRestorer
from pipeline.audio.noise_filter import AlignedRNNoiseFilter

RATE = 16000


class _Heard(FrameProcessor):
    """Keeps the audio each frame carries as it passes (what a VAD step would read)."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: list[bytes] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.audio.append(bytes(frame.audio))
        await self.push_frame(frame, direction)


def _noisy_speech_like() -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(RATE) / RATE
    voice = 6000 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
    return np.clip(voice + rng.normal(0, 1500, RATE), -32768, 32767).astype(np.int16)


@pytest.mark.asyncio
async def test_the_vad_hears_rnnoise_and_the_models_hear_the_microphone() -> None:
    pcm = _noisy_speech_like()
    frames: list[Frame] = [
        InputAudioRawFrame(audio=pcm[i : i + 320].tobytes(), sample_rate=RATE, num_channels=1)
        for i in range(0, pcm.size, 320)
    ]
    vad_side, model_side = _Heard(), _Heard()
    pipeline = Pipeline(
        [
            AudioIngress(RATE, noise_filter=AlignedRNNoiseFilter()),
            vad_side,
            MicrophoneAudioRestorer(),
            model_side,
        ]
    )
    down, _ = await run_test(pipeline, frames_to_send=[*frames, TextFrame("x"), SleepFrame(0.1)])
    assert len(vad_side.audio) == len(model_side.audio) > 40
    microphone = b"".join(model_side.audio)
    denoised = b"".join(vad_side.audio)
    # The models get exactly what the microphone sent (less what the filter still held back at
    # the very start), the VAD something else: RNNoise's output.
    assert pcm.tobytes().endswith(microphone)
    assert len(microphone) >= len(pcm.tobytes()) - 2 * 640
    assert denoised != microphone
    restored = [f for f in down if isinstance(f, InputAudioRawFrame)]
    assert all(f.num_frames == len(f.audio) // 2 for f in restored)


@pytest.mark.asyncio
async def test_without_a_noise_filter_the_frames_pass_as_they_are() -> None:
    pcm = _noisy_speech_like()[:3200]
    frame = InputAudioRawFrame(audio=pcm.tobytes(), sample_rate=RATE, num_channels=1)
    down, _ = await run_test(
        Pipeline([AudioIngress(RATE), MicrophoneAudioRestorer()]), frames_to_send=[frame]
    )
    passed = [f for f in down if isinstance(f, InputAudioRawFrame)]
    assert [f.audio for f in passed] == [pcm.tobytes()]
    assert passed[0] is frame
