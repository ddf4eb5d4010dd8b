"""With no device tool, a request to control a device is answered that nothing was changed,
instead of by a small model that says "Sure! I can turn on the living room light." Everything
else still goes to the LLM."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pipecat.frames.frames import Frame, LLMContextFrame, TTSSpeakFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import SleepFrame, run_test

from pipeline.config import DEFAULT_NO_DEVICE_TOOL_ANSWER, AgentConfig, ToolsConfig
from pipeline.conversation.device_requests import (
    DeviceRequestGuard,
    is_device_request,
    last_user_text,
)
from pipeline.session import _device_request_guard
from tests.support.runtime import unloaded_runtime

DEVICE_REQUESTS = [
    "Turn on the living room lamp.",
    # How Whisper tiny.en hears the recorded fixture at some RNNoise frame phases.
    "Turn on the living room Liam.",
    "Switch the kitchen lights off, please.",
    "Could you turn off the fan?",
    "Dim the lights in the bedroom.",
    "Lock the front door.",
    "Set the thermostat to 21 degrees.",
    "Open the garage door.",
    "Turn up the heating.",
    "Are the lights on in the hallway?",
    "Is the front door locked?",
]
OTHER_REQUESTS = [
    "What's the weather like in Paris?",
    "Set a timer for ten minutes.",
    "Turn off the alarm.",
    "Remind me to turn off the oven in twenty minutes.",
    "How do I turn on dark mode on my phone?",
    "What is a thermostat?",
    "Turn on the news.",
    "Tell me a joke about a lamp.",
    "Is it a good idea to leave the lights on?",
    "",
]


@pytest.mark.parametrize("text", DEVICE_REQUESTS)
def test_device_requests_are_recognised(text: str) -> None:
    assert is_device_request(text)


@pytest.mark.parametrize("text", OTHER_REQUESTS)
def test_other_requests_are_not(text: str) -> None:
    assert not is_device_request(text)


def test_the_last_message_counts_only_when_it_is_the_users() -> None:
    user = {"role": "user", "content": "Turn on the lamp."}
    parts = {"role": "user", "content": [{"type": "text", "text": "Turn on the lamp."}]}
    assistant = {"role": "assistant", "content": "Turn on the lamp."}
    assert last_user_text([user]) == "Turn on the lamp."
    assert last_user_text([parts]) == "Turn on the lamp."
    assert last_user_text([user, assistant]) == ""
    assert last_user_text([]) == ""


def _context(text: str) -> LLMContext:
    messages: Any = [{"role": "user", "content": text}]
    return LLMContext(messages=messages)


async def _through_guard(frame: Frame) -> tuple[DeviceRequestGuard, list[Frame]]:
    guard = DeviceRequestGuard("Nothing was changed.", session_id="test")
    down, _up = await run_test(guard, frames_to_send=[frame, SleepFrame(0.05)])
    return guard, [f for f in down if isinstance(f, LLMContextFrame | TTSSpeakFrame)]


@pytest.mark.asyncio
async def test_a_device_request_is_answered_without_running_the_llm() -> None:
    guard, down = await _through_guard(LLMContextFrame(context=_context("Turn on the lamp.")))
    assert len(down) == 1 and isinstance(down[0], TTSSpeakFrame), down
    assert down[0].text == "Nothing was changed."
    # Into the context like any answer: the model sees what the bot said.
    assert down[0].append_to_context
    assert guard.answered == 1


@pytest.mark.asyncio
async def test_any_other_turn_runs_the_llm() -> None:
    guard, down = await _through_guard(LLMContextFrame(context=_context("Tell me a joke.")))
    assert len(down) == 1 and isinstance(down[0], LLMContextFrame), down
    assert guard.answered == 0


@pytest.mark.asyncio
async def test_a_speculative_context_passes() -> None:
    frame = LLMContextFrame(context=_context("Turn on the lamp."), speculation=True)
    guard, down = await _through_guard(frame)
    assert down == [frame]
    assert guard.answered == 0


def _config(tools: ToolsConfig) -> AgentConfig:
    return dataclasses.replace(unloaded_runtime().config, tools=tools)


def test_the_guard_is_in_sessions_without_home_assistant_only() -> None:
    without = _device_request_guard(_config(ToolsConfig()), "s")
    assert [type(p) for p in without] == [DeviceRequestGuard]
    home = ToolsConfig(
        enabled=("clock", "home_assistant"),
        home_assistant_url="http://127.0.0.1:8123",
        home_assistant_token="token",
    )
    assert _device_request_guard(_config(home), "s") == []
    assert _device_request_guard(_config(ToolsConfig(no_device_tool_answer="")), "s") == []


def test_the_default_answer_says_nothing_was_changed_and_how_to_connect() -> None:
    answer = DEFAULT_NO_DEVICE_TOOL_ANSWER.lower()
    assert "can't control" in answer and "nothing was changed" in answer
    assert "home assistant" in answer and "token" in answer
