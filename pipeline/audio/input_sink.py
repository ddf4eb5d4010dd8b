"""Stop the microphone's audio where its last reader is, instead of at the pipeline's end.

pipecat passes every ``InputAudioRawFrame`` on from processor to processor: Whisper and the
user aggregator (VAD, Smart Turn) forward what they consumed, so each 10-20 ms of microphone
audio also crossed the LLM, the filters, Kokoro, the output transport and the assistant
aggregator, a queue hop and every observer's callback at each. None of them reads it. That
work ran at the audio path's priority, above the models, for the whole call: on two cores it
was the largest share of an idle call's CPU, and it was taken from Kokoro's first audio.
"""

from __future__ import annotations

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class InputAudioSink(FrameProcessor):
    """Drops microphone audio going downstream; everything else passes unchanged."""

    def __init__(self) -> None:
        super().__init__(name="InputAudioSink")
        # Frames dropped, for tests and the curious.
        self.dropped = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Pass ``frame`` on unless it is microphone audio travelling downstream."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and direction is FrameDirection.DOWNSTREAM:
            self.dropped += 1
            return
        await self.push_frame(frame, direction)
