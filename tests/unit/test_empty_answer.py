"""An LLM response without words (a stream cut short with a clean end, an answer that was all
think block) is reported as an LLM error, which the failure responder turns into the apology."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from pipeline.config import LLMConfig
from pipeline.conversation.empty_answer import EMPTY_ANSWER_ERROR, EmptyAnswerGuard
from pipeline.ops.fallback import stage_of
from services.llm import RESPONSE_COMPLETE, create_llm_service
from services.llm_server import LLMEndpoint


def _llm() -> object:
    return create_llm_service(LLMConfig(), LLMEndpoint("http://127.0.0.1:9/v1", "local", "x"))


async def _errors(frames: list[Frame]) -> list[ErrorFrame]:
    llm = _llm()
    _down, up = await run_test(EmptyAnswerGuard(llm), frames_to_send=[*frames, SleepFrame(0.1)])  # type: ignore[arg-type]
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    for error in errors:
        assert error.processor is llm
    return errors


@pytest.mark.asyncio
async def test_an_answer_with_no_words_is_an_llm_error() -> None:
    errors = await _errors(
        [LLMFullResponseStartFrame(), LLMTextFrame(" "), LLMFullResponseEndFrame()]
    )
    assert [e.error for e in errors] == [EMPTY_ANSWER_ERROR]
    assert stage_of(errors[0]) == "llm"


@pytest.mark.asyncio
async def test_an_answer_with_words_passes() -> None:
    frames = [LLMFullResponseStartFrame(), LLMTextFrame("Hello."), LLMFullResponseEndFrame()]
    assert await _errors(frames) == []


@pytest.mark.asyncio
async def test_an_interrupted_answer_is_not_an_error() -> None:
    # Interruptions are system frames, handled ahead of queued ones: space them in time.
    frames = [
        LLMFullResponseStartFrame(),
        SleepFrame(0.05),
        InterruptionFrame(),
        SleepFrame(0.05),
        LLMFullResponseEndFrame(),
    ]
    assert await _errors(frames) == []


@pytest.mark.asyncio
async def test_a_cancelled_answer_is_not_an_error_even_when_its_interruption_came_first() -> None:
    # The user spoke again: the interruption overtook the response's start, and the service
    # marks the end of the request it cancelled.
    end = LLMFullResponseEndFrame()
    end.metadata[RESPONSE_COMPLETE] = False
    frames = [InterruptionFrame(), SleepFrame(0.05), LLMFullResponseStartFrame(), end]
    assert await _errors(frames) == []
