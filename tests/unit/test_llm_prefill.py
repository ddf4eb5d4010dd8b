"""The LLM reads a turn's prompt ahead from the early transcript: the prefill must send exactly
the prompt the turn's own request sends, or the server's prefix cache would not cover it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from pipecat.frames.frames import Frame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import SleepFrame, run_test

from pipeline.config import LLMConfig
from services.frames import LLMPrefillFrame
from services.llm import create_llm_service
from services.llm_gate import LLMGate
from services.llm_server import LLMEndpoint


class _Recorder:
    """An OpenAI-compatible endpoint in memory that keeps every request body."""

    def __init__(self, *, fail: bool = False) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = fail

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if self.fail:
            return httpx.Response(500, json={"error": {"message": "injected"}})
        if body.get("stream"):
            return httpx.Response(
                200,
                content=b"data: [DONE]\n\n",
                headers={"content-type": "text/event-stream"},
            )
        return httpx.Response(
            200,
            json={
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "local",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Sure"},
                        "finish_reason": "length",
                    }
                ],
            },
        )


def _service(recorder: _Recorder, gate: LLMGate | None = None) -> Any:
    llm = create_llm_service(
        LLMConfig(system_prompt="You are a test."),
        LLMEndpoint(base_url="http://127.0.0.1:9/v1", model="local", api_key="k"),
        gate,
    )
    llm._client = AsyncOpenAI(
        api_key="k",
        base_url="http://127.0.0.1:9/v1",
        max_retries=0,
        # openai's stubs name its own httpx build; at run time it is this httpx.
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(recorder.handle)),  # type: ignore[arg-type]
    )
    return llm


def _context() -> LLMContext:
    return LLMContext(
        messages=[
            {"role": "user", "content": "My name is Sam."},
            {"role": "assistant", "content": "Nice to meet you, Sam."},
        ]
    )


async def _prefill(llm: Any, *requests: tuple[LLMContext, str]) -> list[Frame]:
    """The service in a pipeline, sent one LLMPrefillFrame per request; what came out of it."""
    frames: list[Frame] = [LLMPrefillFrame(context=c, text=t) for c, t in requests]
    down, _up = await run_test(llm, frames_to_send=[*frames, SleepFrame(sleep=0.5)])
    return list(down)


@pytest.mark.asyncio
async def test_the_prefill_sends_the_prompt_the_turn_then_sends() -> None:
    recorder = _Recorder()
    llm = _service(recorder)
    context = _context()
    down = await _prefill(llm, (context, "What is my name?"))
    # The request is the LLM's own business: nothing goes downstream for it.
    assert not [f for f in down if isinstance(f, LLMPrefillFrame)]
    # The turn ends: the aggregator writes the same words to the context, the request follows.
    context.add_message({"role": "user", "content": "What is my name?"})
    stream = await llm.get_chat_completions(context)
    await stream.close()

    ahead, turn = recorder.bodies
    assert ahead["max_tokens"] == 1
    assert ahead["stream"] is False
    assert turn["stream"] is True
    prompt_keys = ("messages", "tools", "tool_choice", "chat_template_kwargs", "model")
    assert {k: ahead.get(k) for k in prompt_keys} == {k: turn.get(k) for k in prompt_keys}
    assert ahead["messages"][0] == {"role": "system", "content": "You are a test."}
    assert ahead["messages"][-1] == {"role": "user", "content": "What is my name?"}
    # The context itself was not touched by the prefill.
    assert len(_context().get_messages()) == 2


@pytest.mark.asyncio
async def test_a_failed_prefill_is_only_logged_and_one_runs_at_a_time() -> None:
    recorder = _Recorder(fail=True)
    llm = _service(recorder)
    # The second comes while the first is still in flight: not sent.
    await _prefill(llm, (_context(), "first"), (_context(), "second"))
    assert [body["messages"][-1]["content"] for body in recorder.bodies] == ["first"]
    assert llm.prefills == 1
