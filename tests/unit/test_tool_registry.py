"""The session's tools as pipecat function calls: schemas, results, errors, the timeout apology,
the working phrase, timers speaking through the pipeline, and teardown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.llm_service import FunctionCallParams
from pipecat.tests.utils import SleepFrame, run_test

from pipeline.config import LLMConfig, ToolsConfig
from pipeline.tools.registry import SessionTools, Tool, install_tools
from pipeline.tools.schemas import openai_tools, tool_schemas
from services.llm import create_llm_service
from services.llm_server import LLMEndpoint
from tests.support.tool_calls import Call

DEFAULT_NAMES = [
    "get_current_time",
    "calculate",
    "convert_units",
    "set_timer",
    "set_reminder",
    "cancel_timer",
    "list_timers",
]
HOME = ToolsConfig(
    enabled=("clock", "home_assistant"),
    home_assistant_url="http://192.168.1.20:8123",
    home_assistant_token="secret",
)


def _tool(tools: SessionTools, name: str) -> Tool:
    return next(t for t in tools.tools if t.schema.name == name)


async def _call(tools: SessionTools, name: str, **arguments: Any) -> Call:
    call = Call(name, arguments)
    await tools.call(_tool(tools, name), call.params)
    return call


def test_default_tools_and_no_home_assistant() -> None:
    assert [s.name for s in tool_schemas(ToolsConfig())] == DEFAULT_NAMES
    assert tool_schemas(ToolsConfig(enabled=())) == []


def test_home_assistant_is_offered_only_when_configured() -> None:
    assert [s.name for s in tool_schemas(HOME)] == ["get_current_time", "home_assistant"]
    no_token = ToolsConfig(
        enabled=("home_assistant",), home_assistant_url="http://192.168.1.20:8123"
    )
    assert tool_schemas(no_token) == []
    assert "secret" not in repr(HOME)


def test_openai_tools_are_stable_json() -> None:
    first, second = openai_tools(ToolsConfig()), openai_tools(ToolsConfig())
    assert json.dumps(first) == json.dumps(second)
    assert [t["function"]["name"] for t in first] == DEFAULT_NAMES
    assert first[1]["function"]["parameters"]["required"] == ["expression"]
    assert openai_tools(ToolsConfig(enabled=())) == []


@pytest.mark.asyncio
async def test_calculator_and_units_answer() -> None:
    tools = SessionTools(ToolsConfig())
    call = await _call(tools, "calculate", expression="17 * 23")
    assert call.result == {"expression": "17 * 23", "result": "391", "answer": "The answer is 391."}
    # The model is asked for the answer (no properties), and nothing was said meanwhile.
    assert call.results[0][1] is None and call.llm.pushed == []
    converted = await _call(tools, "convert_units", value="5", from_unit="miles", to_unit="km")
    assert converted.result == {"result": "8.05", "answer": "5 miles is 8.05 kilometers."}
    assert tools.calls == {"calculate": 1, "convert_units": 1}
    await tools.close()


@pytest.mark.asyncio
async def test_speak_results_says_the_tool_s_sentence_instead_of_asking_the_model() -> None:
    tools = SessionTools(ToolsConfig(speak_results=True))
    call = await _call(tools, "calculate", expression="6 * 7")
    [(result, properties)] = call.results
    assert result["result"] == "42"
    assert properties is not None and properties.run_llm is False
    assert [getattr(f, "text", None) for f in call.llm.pushed] == ["The answer is 42."]
    failed = await _call(tools, "calculate", expression="1 / 0")
    assert [getattr(f, "text", None) for f in failed.llm.pushed] == [
        "Sorry, I couldn't do that: division by zero."
    ]
    await tools.close()


def _turn_with_call(name: str, arguments: dict[str, Any], result: dict[str, Any]) -> LLMContext:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    return LLMContext(
        messages=[
            {"role": "user", "content": "What is 17 times 23?"},
            {"role": "assistant", "tool_calls": [call]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": "c1", "content": json.dumps(result)},
            {"role": "assistant", "tool_calls": [{**call, "id": "c2"}]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": "c2", "content": "IN_PROGRESS"},
        ]
    )


@pytest.mark.asyncio
async def test_a_call_repeated_in_one_turn_is_answered_with_the_first_result() -> None:
    # What qwen2.5-coder-0.5b does with a tool's result: it calls the same tool again.
    tools = SessionTools(ToolsConfig())
    first = {"expression": "17 * 23", "result": "391", "answer": "The answer is 391."}
    call = Call("calculate", {"expression": "17 * 23"})
    call.params.context = _turn_with_call("calculate", {"expression": "17 * 23"}, first)
    await tools.call(_tool(tools, "calculate"), call.params)
    [(result, properties)] = call.results
    assert result == first
    assert properties is not None and properties.run_llm is False
    assert [getattr(f, "text", None) for f in call.llm.pushed] == ["The answer is 391."]
    assert (tools.calls, tools.repeats) == ({}, 1)
    # Other arguments are a new question: that call runs.
    other = Call("calculate", {"expression": "2 + 2"})
    other.params.context = call.params.context
    await tools.call(_tool(tools, "calculate"), other.params)
    assert other.result["result"] == "4" and tools.calls == {"calculate": 1}
    await tools.close()


@pytest.mark.asyncio
async def test_calls_per_turn_are_bounded() -> None:
    tools = SessionTools(ToolsConfig(max_calls_per_turn=1))
    call = Call("calculate", {"expression": "5 - 1"})
    call.params.context = _turn_with_call("calculate", {"expression": "1 + 1"}, {"result": "2"})
    await tools.call(_tool(tools, "calculate"), call.params)
    assert call.result == {"error": "too many tool calls for one question"}
    assert tools.calls == {}
    await tools.close()


@pytest.mark.asyncio
async def test_a_conversion_asked_of_the_calculator_is_converted() -> None:
    # What qwen2.5-coder-0.5b sends for "How many kilometers is 5 miles?".
    tools = SessionTools(ToolsConfig())
    call = await _call(
        tools,
        "calculate",
        expression="5 miles * 1.609375 kilometers per mile",
        from_unit="mile",
        to_unit="kilometers",
    )
    assert call.result == {"result": "8.05", "answer": "5 miles is 8.05 kilometers."}
    call = await _call(tools, "calculate", expression="5 kilometers in miles")
    assert call.result["answer"] == "5 kilometers is 3.11 miles."
    await tools.close()


@pytest.mark.asyncio
async def test_bad_arguments_give_the_model_a_reason() -> None:
    tools = SessionTools(ToolsConfig())
    assert (await _call(tools, "calculate", expression="1 / 0")).result == {
        "error": "division by zero"
    }
    assert (
        (await _call(tools, "convert_units", value=1, from_unit="kg", to_unit="m"))
        .result["error"]
        .startswith("cannot convert")
    )
    assert (await _call(tools, "set_timer", duration="soon")).result == {
        "error": "no duration in 'soon'"
    }
    assert (await _call(tools, "set_timer", minutes="soon")).result == {
        "error": "minutes must be a number, not 'soon'"
    }
    await tools.close()


@pytest.mark.asyncio
async def test_the_clock_reads_the_injected_time() -> None:
    now = datetime(2025, 11, 21, 15, 4, tzinfo=UTC)
    tools = SessionTools(ToolsConfig(), clock=lambda: now)
    result = (await _call(tools, "get_current_time", type="object")).result
    assert result["time"] == "3:04 PM"
    assert result["date"] == "Friday, November 21, 2025"
    assert result["answer"] == "It is 3:04 PM on Friday, November 21, 2025."
    await tools.close()


@pytest.mark.asyncio
async def test_a_hanging_tool_is_cancelled_with_a_spoken_apology() -> None:
    config = ToolsConfig(timeout_secs=0.1)
    tools = SessionTools(config)
    cancelled = asyncio.Event()

    async def hang(_arguments: Mapping[str, Any], _params: FunctionCallParams) -> dict[str, Any]:
        try:
            await asyncio.sleep(3600)
        finally:
            cancelled.set()
        return {}

    call = Call("get_current_time", {})
    hung = Tool(_tool(tools, "get_current_time").schema, hang)
    await asyncio.wait_for(tools.call(hung, call.params), 2)
    assert cancelled.is_set()
    [(result, properties)] = call.results
    assert result == {"error": "get_current_time did not finish in time and was cancelled"}
    # The apology is the answer: the LLM is not asked to explain a hung tool.
    assert properties is not None and properties.run_llm is False
    [apology] = call.llm.pushed
    assert isinstance(apology, TTSSpeakFrame) and apology.text == config.timeout_apology
    assert tools.timeouts == 1
    await tools.close()


@pytest.mark.asyncio
async def test_a_broken_tool_is_reported_to_the_model() -> None:
    tools = SessionTools(ToolsConfig())

    async def broken(_arguments: Mapping[str, Any], _params: FunctionCallParams) -> dict[str, Any]:
        raise RuntimeError("bug")

    call = Call("calculate", {})
    await tools.call(Tool(_tool(tools, "calculate").schema, broken), call.params)
    assert call.result == {"error": "calculate failed"}
    await tools.close()


@pytest.mark.asyncio
async def test_a_timer_speaks_through_the_session_pipeline() -> None:
    tools = SessionTools(ToolsConfig())
    call = await _call(tools, "set_timer", duration="0.05 seconds", label="pasta")
    assert call.result["set"] == "timer for less than a second"
    assert call.result["answer"].startswith("OK, a timer for less than a second, until ")
    listed = (await _call(tools, "list_timers")).result
    assert listed["timers"][0]["name"] == "pasta"
    await asyncio.wait_for(call.worker.got.wait(), 2)
    [spoken] = call.worker.queued
    assert isinstance(spoken, TTSSpeakFrame) and spoken.text == "Your pasta timer is done."
    await tools.close()


@pytest.mark.asyncio
async def test_reminders_and_cancelling() -> None:
    tools = SessionTools(ToolsConfig())
    set_ = await _call(tools, "set_reminder", duration="10 minutes", reminder="call the plumber")
    assert set_.result["set"] == "reminder for 10 minutes"
    assert set_.result["answer"] == "OK, I will remind you in 10 minutes."
    listed = (await _call(tools, "list_timers")).result["answer"]
    assert listed == "Running: call the plumber with 10 minutes left."
    # Only set_reminder makes a reminder, whatever else a model fills in.
    timer = (await _call(tools, "set_timer", duration="2 hours", reminder="Set a timer")).result
    assert timer["set"] == "timer for 2 hours"
    # A bare number is minutes; a model's own hours/minutes/seconds fields are understood too.
    assert (await _call(tools, "set_timer", duration=5)).result["set"] == "timer for 5 minutes"
    assert (await _call(tools, "set_timer", hours=1)).result["set"] == "timer for 1 hour"
    assert (await _call(tools, "cancel_timer", label="plumber")).result == {
        "cancelled": 1,
        "still_running": 3,
        "answer": "Cancelled 1 timer.",
    }
    assert (await _call(tools, "cancel_timer")).result["still_running"] == 0
    assert (await _call(tools, "cancel_timer")).result["answer"] == "There was no timer to cancel."
    await tools.close()


@pytest.mark.asyncio
async def test_the_working_phrase_is_said_once_a_call_runs_long() -> None:
    tools = SessionTools(ToolsConfig(working_phrase_after_secs=0.05))

    async def slow(_arguments: Mapping[str, Any], _params: FunctionCallParams) -> dict[str, Any]:
        await asyncio.sleep(0.2)
        return {"answer": "Done slowly."}

    schema = _tool(tools, "get_current_time").schema
    call = Call("get_current_time", {})
    await tools.call(Tool(schema, slow), call.params)
    [phrase] = call.llm.pushed
    assert isinstance(phrase, TTSSpeakFrame)
    assert (phrase.text, phrase.append_to_context) == ("One moment.", False)
    assert call.result == {"answer": "Done slowly."}
    # A second slow call right after (calls made together) gets no second phrase.
    again = Call("get_current_time", {})
    await tools.call(Tool(schema, slow), again.params)
    assert again.llm.pushed == []
    await tools.close()


@pytest.mark.asyncio
async def test_installed_tools_are_registered_and_torn_down_with_the_llm() -> None:
    llm = create_llm_service(LLMConfig(), LLMEndpoint("http://127.0.0.1:9/v1", "local", "x"))
    context = LLMContext()
    tools = install_tools(llm, context, ToolsConfig(), "s1")
    assert all(llm.has_function(name) for name in DEFAULT_NAMES)
    assert [t.name for t in cast(Any, context.tools).standard_tools] == DEFAULT_NAMES

    async def say(_text: str) -> None:
        raise AssertionError("a timer outlived its session")

    timer = tools.timers.start(3600, say)
    await run_test(llm, frames_to_send=[SleepFrame(0.05)])
    # The pipeline's end tore the LLM service down, and the session's timers with it.
    assert tools.timers.pending() == []
    assert timer.task is not None and timer.task.cancelled()


def test_no_tools_installs_nothing() -> None:
    llm = create_llm_service(LLMConfig(), LLMEndpoint("http://127.0.0.1:9/v1", "local", "x"))
    context = LLMContext()
    install_tools(llm, context, ToolsConfig(enabled=()), "s1")
    assert not llm.has_function("calculate")
    assert context.tools.__class__.__name__ == "NotGiven"
