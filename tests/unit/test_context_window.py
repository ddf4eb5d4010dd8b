"""The rolling context window: bounded turns, a summary in front, the system prompt untouched."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import httpx

from pipeline.config import DEFAULT_SYSTEM_PROMPT, ContextWindowConfig
from pipeline.conversation.context_window import (
    SUMMARY_PREFIX,
    Compactor,
    ContextWindow,
    Message,
    digest,
    is_summary,
    prewarm_with_llm,
    summarize_folded,
    turn_starts,
)
from services.llm_server import LLMEndpoint

CONFIG = ContextWindowConfig(keep_turns=4, fold_every=2, digest_chars=200)


def _turns(first: int, last: int) -> list[Message]:
    messages: list[Message] = []
    for index in range(first, last + 1):
        messages.append({"role": "user", "content": f"question {index}"})
        messages.append({"role": "assistant", "content": f"answer {index}"})
    return messages


def _converse(turns: int, summarize_fails: bool = False) -> tuple[list[Message], list[int]]:
    """Run ``turns`` turns through a compactor; the context and its turn count after each."""
    calls: list[int] = []

    async def summarize(previous: str, folded: Sequence[Message]) -> str:
        calls.append(len(folded))
        if summarize_fails:
            raise httpx.ConnectError("no server")
        return f"{previous} folded {len(folded)}".strip()

    async def scenario() -> tuple[list[Message], list[int]]:
        compactor = Compactor(CONFIG, summarize)
        context: list[Message] = []
        sizes = []

        def set_(messages: list[Message]) -> None:
            context[:] = messages

        for index in range(1, turns + 1):
            context.extend(_turns(index, index))
            await compactor.compact(lambda: list(context), set_)
            sizes.append(len(turn_starts(context[2:] if is_summary(context) else context)))
        return context, sizes

    context, sizes = asyncio.run(asyncio.wait_for(scenario(), 10))
    return context, sizes


def test_nothing_folds_within_bounds() -> None:
    assert ContextWindow(CONFIG).plan(_turns(1, 6)) is None


def test_turns_stay_bounded_and_the_summary_goes_first() -> None:
    context, sizes = _converse(30)
    assert max(sizes) <= CONFIG.keep_turns + CONFIG.fold_every
    assert min(sizes[10:]) >= CONFIG.keep_turns
    assert is_summary(context)
    assert context[0]["content"].startswith(SUMMARY_PREFIX)
    # The newest turns are verbatim, in order.
    assert context[-2:] == _turns(30, 30)
    assert context[2]["role"] == "user"


def test_failed_summary_falls_back_to_a_truncated_digest() -> None:
    context, _sizes = _converse(12, summarize_fails=True)
    summary = context[0]["content"][len(SUMMARY_PREFIX) :]
    assert "question" in summary and len(summary) <= CONFIG.digest_chars
    assert context[-2:] == _turns(12, 12)


def test_fold_is_dropped_when_the_context_changed_meanwhile() -> None:
    window = ContextWindow(CONFIG)
    messages = _turns(1, 7)
    fold = window.plan(messages)
    assert fold is not None
    replaced = _turns(1, 7)  # equal text, different message objects (e.g. a reset)
    assert window.apply(replaced, fold, "s") is None
    applied = window.apply(messages, fold, "s")
    assert applied is not None and len(turn_starts(applied[2:])) == CONFIG.keep_turns


def test_digest_keeps_the_newest_text() -> None:
    text = digest("earlier", _turns(1, 20), 80)
    assert len(text) == 80 and text.endswith("answer 20")


def test_summary_request_starts_with_the_identical_system_prompt() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={"choices": [{"message": {"role": "assistant", "content": " Sam likes tea. "}}]},
        )

    async def scenario() -> str:
        endpoint = LLMEndpoint(base_url="http://llm.test/v1", model="local", api_key="k")
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await summarize_folded(
                endpoint,
                DEFAULT_SYSTEM_PROMPT,
                CONFIG,
                client,
                previous="User is Sam.",
                folded=_turns(1, 2),
            )

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == "Sam likes tea."
    (body,) = seen
    messages = body["messages"]
    assert isinstance(messages, list)
    assert messages[0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    assert messages[1]["content"] == SUMMARY_PREFIX + "User is Sam."
    assert body["max_tokens"] == CONFIG.summary_max_tokens and body["stream"] is False


def test_the_folded_context_is_prewarmed_after_each_fold() -> None:
    warmed: list[list[Message]] = []

    async def summarize(previous: str, folded: Sequence[Message]) -> str:
        return "short"

    async def prewarm(messages: Sequence[Message]) -> None:
        warmed.append(list(messages))

    async def scenario() -> list[Message]:
        compactor = Compactor(CONFIG, summarize, prewarm=prewarm)
        context = _turns(1, CONFIG.keep_turns + CONFIG.fold_every + 1)

        def set_(messages: list[Message]) -> None:
            context[:] = messages

        assert await compactor.compact(lambda: list(context), set_)
        return context

    context = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert warmed == [context]


def test_digest_summarizer_makes_no_request() -> None:
    """On a one-request-at-a-time server the window keeps a digest and never asks the LLM."""
    config = ContextWindowConfig(summarizer="digest", digest_chars=200)
    folded: list[Message] = [
        {"role": "user", "content": "My name is Sam."},
        {"role": "assistant", "content": "Nice to meet you, Sam."},
    ]

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request to {request.url}")

    async def run() -> str:
        transport = httpx.MockTransport(refuse)
        async with httpx.AsyncClient(transport=transport) as client:
            endpoint = LLMEndpoint("http://127.0.0.1:9/v1", "local", "local")
            return await summarize_folded(
                endpoint, DEFAULT_SYSTEM_PROMPT, config, client, previous=None, folded=folded
            )

    summary = asyncio.run(run())
    assert summary == digest(None, folded, 200)
    assert "Sam" in summary


def test_the_prewarm_carries_the_tools_and_tool_messages_as_sent() -> None:
    # The tools render right after the system prompt and tool calls render as calls: a prewarm
    # without them would leave nothing but the system prompt in the server's prefix cache.
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": "."}}]})

    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages: list[Message] = [
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"time": "3:04 PM"}'},
        {"role": "assistant", "content": [{"type": "text", "text": "It is 3:04 PM."}]},
    ]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]

    async def scenario() -> None:
        endpoint = LLMEndpoint(base_url="http://llm.test/v1", model="local", api_key="k")
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            await prewarm_with_llm(
                endpoint, DEFAULT_SYSTEM_PROMPT, client, messages, timeout_secs=5, tools=tools
            )

    asyncio.run(asyncio.wait_for(scenario(), 10))
    (body,) = seen
    assert body["tools"] == tools
    sent = body["messages"]
    assert isinstance(sent, list)
    assert sent[1:] == [
        messages[0],
        messages[1],
        messages[2],
        {"role": "assistant", "content": "It is 3:04 PM."},
    ]
