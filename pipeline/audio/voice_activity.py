"""The VAD as the pipeline's own step, ahead of the STT: speech start and stop, and the voice
going quiet, once per audio window, as frames.

pipecat's ``VADProcessor`` runs the analyzer and broadcasts ``VADUserStartedSpeakingFrame`` /
``VADUserStoppedSpeakingFrame``; the user aggregator's turn strategies and the STT read those
frames as they would read its own VAD's. With the endpointing VAD
(``pipeline.audio.endpointing_vad``), this processor also carries the analyzer's "the voice went
quiet" gate downstream (``services.frames``): a :class:`VoiceQuietFrame` after each window of a
quiet run inside speech, and a :class:`VoiceResumedFrame` when the voice comes back after one.
The early transcript (STT) and early Smart Turn start on the first and drop their work on the
second, so the three agree on one measurement of the voice instead of keeping three gates.

The quiet frames are pushed after the audio they describe, downstream only: nothing upstream
of the VAD reads them.
"""

from __future__ import annotations

from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection

from pipeline.audio.endpointing_vad import EndpointingSileroVAD
from services.frames import VoiceQuietFrame, VoiceResumedFrame


class QuietAnnouncer:
    """Which frame, if any, the gate's latest verdict makes: one per quiet step, and one
    resumption after them."""

    def __init__(self) -> None:
        # A VoiceQuietFrame went out and no VoiceResumedFrame since.
        self._announced = False

    def update(self, quiet_secs: float | None) -> VoiceQuietFrame | VoiceResumedFrame | None:
        """``quiet_secs`` as :attr:`EndpointingSileroVAD.quiet_secs` gives it."""
        if quiet_secs is None:
            # Outside speech: the turn's stop (or its absence) says the rest.
            self._announced = False
            return None
        if quiet_secs > 0:
            self._announced = True
            return VoiceQuietFrame(quiet_secs=quiet_secs)
        if self._announced:
            self._announced = False
            return VoiceResumedFrame()
        return None


class VoiceActivityProcessor(VADProcessor):
    """pipecat's VAD processor, announcing the endpointing VAD's quiet runs as frames."""

    def __init__(self, *, vad_analyzer: VADAnalyzer, **kwargs: object) -> None:
        super().__init__(vad_analyzer=vad_analyzer, **kwargs)  # type: ignore[arg-type]
        self._endpointing = vad_analyzer if isinstance(vad_analyzer, EndpointingSileroVAD) else None
        self._announcer = QuietAnnouncer()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """pipecat's VAD on the frame, then the quiet gate's verdict on the same audio."""
        await super().process_frame(frame, direction)
        if self._endpointing is None or not isinstance(frame, InputAudioRawFrame):
            return
        announcement = self._announcer.update(self._endpointing.quiet_secs)
        if announcement is not None:
            await self.push_frame(announcement)
