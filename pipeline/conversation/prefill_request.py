"""Turns the STT's early transcript into a prefill request for the LLM, with the turn's words.

Between the user aggregator and the LLM: the ``EarlyTranscriptFrame`` (``services.frames``) holds
only the current segment's words, while the turn's message will also hold the words aggregated
before a pause the turn went on after. This step reads both from the user aggregator and asks
the LLM to read ahead exactly the message the turn will send (``LLMPrefillFrame``;
``services.llm``).
"""

from __future__ import annotations

from pipecat.frames.frames import Frame
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregator
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from services.frames import EarlyTranscriptFrame, LLMPrefillFrame


class PrefillRequester(FrameProcessor):
    """``EarlyTranscriptFrame`` in, ``LLMPrefillFrame`` out; every other frame passes."""

    def __init__(self, user: LLMUserAggregator, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._user = user

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Replace an early transcript by the prefill request it makes."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, EarlyTranscriptFrame):
            await self.push_frame(frame, direction)
            return
        pending = self._user.aggregation_string()
        text = f"{pending} {frame.text}" if pending else frame.text
        await self.push_frame(LLMPrefillFrame(context=self._user.context, text=text), direction)
