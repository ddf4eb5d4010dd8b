"""RNNoise for the VAD only: the speech models hear the microphone as it came.

RNNoise keeps the VAD from taking a television or a fan for a voice, but what it takes out of
speech costs Whisper words: on the recorded human speech in tests/fixtures/speech, spoken into
the live input path (``jetvoice bench --hearing``), tiny.en wrote 20.2 % of the words wrong
with RNNoise ahead of it and 13.1 % without (AMD EPYC, 2 cores); offline, on the same
recordings, 16.1 % against 10.7 %. Whisper and Smart Turn were trained on unfiltered speech,
noise included.

So the audio ingress denoises each frame for the VAD and keeps the microphone's audio beside
it in the frame's metadata (:func:`keep_microphone_audio`); right after the VAD step,
:class:`MicrophoneAudioRestorer` hands the frames on with the microphone's audio again, and the
STT and the user aggregator (Smart Turn) hear that. It pushes new frames rather than changing
the old ones: pipecat's VAD step pushes a frame before it analyses it, so the frame the VAD is
reading must not change under it.
"""

from __future__ import annotations

import dataclasses

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

# The key under which an audio frame carries the microphone's audio, before the noise filter.
MICROPHONE_AUDIO = "jetvoice.microphone_audio"


def keep_microphone_audio(frame: InputAudioRawFrame, audio: bytes) -> None:
    """Note ``audio`` (what the microphone sent, repaired) on ``frame`` before it is denoised."""
    frame.metadata[MICROPHONE_AUDIO] = audio


class MicrophoneAudioRestorer(FrameProcessor):
    """Downstream of the VAD: audio frames carry the microphone's audio, not the denoised."""

    def __init__(self) -> None:
        super().__init__(name="MicrophoneAudioRestorer")

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """A new frame with the microphone's audio for each denoised one; the rest as is."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            audio = frame.metadata.get(MICROPHONE_AUDIO)
            if isinstance(audio, bytes):
                restored = dataclasses.replace(frame, audio=audio)
                restored.transport_source = frame.transport_source
                restored.pts = frame.pts
                frame = restored
        await self.push_frame(frame, direction)
