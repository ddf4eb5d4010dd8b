"""The tool loop in one process: the real LLM client and pipecat's context aggregator against a
scripted OpenAI-compatible server (and a fake Home Assistant) on 127.0.0.1.

The model asks for a tool, the tool runs, its result goes back in a second request, and the
answer built from it comes out. A hanging tool gets the working phrase, then is cut off at its
timeout with the spoken apology and no second request, and the next turn works.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pipecat.frames.frames import Frame, LLMMessagesAppendFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext, LLMContextMessage
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.tests.utils import SleepFrame, run_test

from pipeline.config import LLMConfig, ToolsConfig
from pipeline.conversation.empty_answer import EmptyAnswerGuard
from pipeline.tools.registry import install_tools
from services.llm import create_llm_service
from services.llm_server import LLMEndpoint
from tests.support import fake_home_assistant, scripted_llm
from tests.support.local_server import serve


class Servers:
    """The scripted model and the fake Home Assistant, with their apps for inspection."""

    def __init__(self, llm_url: str, llm_app: Any, ha_url: str, ha_app: Any) -> None:
        self.llm_url, self.llm_app = llm_url, llm_app
        self.ha_url, self.ha_app = ha_url, ha_app

    async def script(self, tool: str | None, arguments: dict[str, Any], *, as_text: bool) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            body = {"tool": tool, "arguments": arguments, "as_text": as_text}
            (await client.post(f"{self.llm_url}/control", json=body)).raise_for_status()

    async def script_turns(self, turns: list[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            (await client.post(f"{self.llm_url}/control", json={"turns": turns})).raise_for_status()

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self.llm_app.state.requests)


@pytest_asyncio.fixture
async def servers() -> AsyncIterator[Servers]:
    llm_app, ha_app = scripted_llm.create_app(), fake_home_assistant.create_app()
    async with serve(llm_app) as llm_url, serve(ha_app) as ha_url:
        yield Servers(llm_url, llm_app, ha_url, ha_app)


def _tools(servers: Servers, timeout_secs: float = 3.0) -> ToolsConfig:
    return ToolsConfig(
        enabled=("clock", "calculator", "units", "timers", "home_assistant"),
        timeout_secs=timeout_secs,
        home_assistant_url=servers.ha_url,
        home_assistant_token=fake_home_assistant.TOKEN,
    )


async def _turns(
    servers: Servers, config: ToolsConfig, questions: Sequence[str], wait_secs: float = 1.5
) -> tuple[LLMContext, list[Frame]]:
    """Ask each question in turn through [LLM, empty-answer guard, assistant aggregator].

    There is no TTS: spoken phrases show as TTSSpeakFrames, and only the LLM's words reach the
    context.
    """
    endpoint = LLMEndpoint(f"{servers.llm_url}/v1", "local", "x")
    llm = create_llm_service(LLMConfig(request_timeout_secs=5), endpoint)
    context = LLMContext()
    aggregators = LLMContextAggregatorPair(context)
    install_tools(llm, context, config, "test")
    frames: list[Frame] = []
    for question in questions:
        user: LLMContextMessage = {"role": "user", "content": question}
        frames += [LLMMessagesAppendFrame(messages=[user], run_llm=True), SleepFrame(wait_secs)]
    pipeline = Pipeline([llm, EmptyAnswerGuard(llm), aggregators.assistant()])
    down, _up = await run_test(pipeline, frames_to_send=frames)
    return context, list(down)


def _said(down: list[Frame]) -> list[str]:
    return [f.text for f in down if isinstance(f, TTSSpeakFrame)]


def _assistant_texts(context: LLMContext) -> list[str]:
    return [
        str(m.get("content"))
        for m in context.get_messages()
        if isinstance(m, dict) and m.get("role") == "assistant" and m.get("content")
    ]


@pytest.mark.asyncio
@pytest.mark.timeout(60)
@pytest.mark.parametrize("as_text", [False, True], ids=["tool_calls", "as_text"])
async def test_a_tool_call_round_trip(servers: Servers, as_text: bool) -> None:
    await servers.script("calculate", {"expression": "17 * 23"}, as_text=as_text)
    context, down = await _turns(servers, _tools(servers), ["What is 17 times 23?"])
    requests = servers.requests
    assert len(requests) == 2
    # The tools travel in the request, not in the system prompt.
    assert [t["function"]["name"] for t in requests[0]["tools"]][:3] == [
        "get_current_time",
        "calculate",
        "convert_units",
    ]
    tool_message = requests[1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert json.loads(tool_message["content"])["result"] == "391"
    # An instant tool: no working phrase, the model's answer comes straight away.
    assert _said(down) == []
    assert _assistant_texts(context)[-1] == "Here you go: The answer is 391."


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_home_assistant_through_the_model(servers: Servers) -> None:
    await servers.script("home_assistant", {"command": "$user"}, as_text=False)
    context, _down = await _turns(servers, _tools(servers), ["Turn on the living room lamp."])
    assert servers.ha_app.state.commands == [
        {"text": "Turn on the living room lamp.", "language": "en"}
    ]
    assert _assistant_texts(context)[-1] == "Here you go: Done: Turn on the living room lamp."


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_a_hanging_tool_gets_the_apology_and_the_next_turn_works(servers: Servers) -> None:
    servers.ha_app.state.mode = "hang"
    await servers.script_turns(
        [{"tool": "home_assistant", "arguments": {"command": "$user"}}, {"tool": None}]
    )
    config = _tools(servers, timeout_secs=1.0)
    context, down = await _turns(
        servers, config, ["Open the garage.", "What's the weather?"], wait_secs=2.0
    )
    assert _said(down) == ["One moment.", config.timeout_apology]
    # Two requests, one per turn: the apology is the first turn's answer, the model is not
    # asked to explain the hung tool.
    requests = servers.requests
    assert [r["messages"][-1]["role"] for r in requests] == ["user", "user"]
    tool_results = [
        m for m in context.get_messages() if isinstance(m, dict) and m["role"] == "tool"
    ]
    assert "did not finish in time" in str(tool_results[0]["content"])
    assert _assistant_texts(context)[-1] == scripted_llm.PLAIN_ANSWER
