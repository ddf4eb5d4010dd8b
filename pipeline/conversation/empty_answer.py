"""An LLM answer without a single word is a failure, not a silent turn.

A provider can fail without an error: llama-cpp-python's server, by default, ends a running
stream with a clean ``[DONE]`` when another request arrives, and a model can spend its whole
budget inside a think block that the think filter removes. Either way the response starts and
ends with nothing to say, no ``ErrorFrame`` is raised, and the user waits in silence. This
processor, after the think filter, reports such a response as an error of the LLM service, so
the failure responder says its apology like for any other LLM failure. An interrupted response
(the user spoke again) is not a failure, and neither is one that calls tools instead of talking
(the answer comes with the next response, after the tools' results).
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService

from services.llm import RESPONSE_COMPLETE

EMPTY_ANSWER_ERROR = "the language model returned an empty answer"


class EmptyAnswerGuard(FrameProcessor):
    """Turns an LLM response with no words into an ``ErrorFrame`` of ``llm``."""

    def __init__(self, llm: LLMService[Any]) -> None:
        super().__init__()
        self._llm = llm
        self._open = False
        self._said_something = False
        self._called_tools = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Watch each response for words; pass every frame on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMFullResponseStartFrame):
            self._open, self._said_something = True, False
        elif isinstance(frame, LLMTextFrame) and frame.text.strip():
            self._said_something = True
        elif isinstance(frame, FunctionCallsStartedFrame):
            # A system frame: it may overtake the queued start of its own response, so it is
            # remembered until the response's end rather than reset by the start.
            self._called_tools = True
        elif isinstance(frame, InterruptionFrame):
            self._open = False
        elif isinstance(frame, LLMFullResponseEndFrame):
            said = self._said_something or self._called_tools
            was_open, self._open, self._called_tools = self._open, False, False
            # A response cancelled by the user speaking again is not a failure, even when the
            # interruption overtook the response's start (so the guard saw no interruption).
            if was_open and not said and frame.metadata.get(RESPONSE_COMPLETE, True):
                error = ErrorFrame(error=EMPTY_ANSWER_ERROR)
                # Attributed to the LLM service: the failure responder apologises for it.
                error.processor = self._llm
                await self.push_frame(error, FrameDirection.UPSTREAM)
        await self.push_frame(frame, direction)
