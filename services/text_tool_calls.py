"""Tool calls that a server streams as answer text, turned into OpenAI ``tool_calls`` deltas.

vLLM with ``--tool-call-parser hermes`` returns Qwen's tool calls as proper ``tool_calls``.
llama-cpp-python's server renders the tools into the prompt through the model's own chat
template but has no parser for the answer (its ``chatml-function-calling`` format refuses to
stream an automatic tool choice and drops tool results from the prompt), so the model's call
arrives as text: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, or, from small
Qwen2.5 models, the bare JSON object (now and then in a Markdown code fence). This wrapper
watches the start of each answer: text that starts like a tool call is held to the end of the
stream and turned into tool-call chunks; anything else passes through untouched, so a spoken
answer is not delayed.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Collection
from typing import Any, Protocol

from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import (
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)

OPEN_TAG = "<tool_call>"
_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
# Small models sometimes wrap the call in a Markdown code fence.
_FENCE = re.compile(r"```(?:json)?")


class ChunkStream(Protocol):
    """What the OpenAI client's ``AsyncStream`` offers that the LLM service uses."""

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        """The chunks."""
        ...

    async def close(self) -> None:
        """Release the HTTP response."""
        ...


def parse_tool_calls(text: str, names: Collection[str]) -> list[tuple[str, dict[str, Any]]] | None:
    """The ``(name, arguments)`` calls written in ``text``, or None if it is not tool calls.

    Calls to a function not in ``names`` are dropped (a made-up tool is not worth a turn);
    text that is tool-call shaped but has no known call gives an empty list.
    """
    body = _FENCE.sub("", text).strip()
    if body.startswith(OPEN_TAG):
        pieces = [m.group(1) for m in _TAGGED.finditer(body)]
    elif body.startswith("{"):
        pieces = [body]
    else:
        return None
    objects: list[Any] = []
    decoder = json.JSONDecoder()
    for piece in pieces:
        rest = piece.strip()
        while rest:
            try:
                value, end = decoder.raw_decode(rest)
            except ValueError:
                break
            objects.append(value)
            rest = rest[end:].lstrip().lstrip(",;").lstrip()
    if not objects:
        return None
    calls: list[tuple[str, dict[str, Any]]] = []
    for value in objects:
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            return calls or None
        arguments = value.get("arguments", value.get("parameters", {}))
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                arguments = {}
        if value["name"] in names:
            calls.append((value["name"], arguments if isinstance(arguments, dict) else {}))
    return calls


def _could_become_call(text: str) -> bool:
    """Whether the answer so far may still turn out to be a tool call."""
    start = text.lstrip()
    return not start or start.startswith(("{", OPEN_TAG, "`")) or OPEN_TAG.startswith(start)


def _with_content(template: ChatCompletionChunk, content: str) -> ChatCompletionChunk:
    return ChatCompletionChunk(
        id=template.id,
        created=template.created,
        model=template.model,
        object="chat.completion.chunk",
        choices=[Choice(index=0, delta=ChoiceDelta(content=content), finish_reason=None)],
    )


def _tool_call_chunk(
    template: ChatCompletionChunk, index: int, name: str, arguments: dict[str, Any]
) -> ChatCompletionChunk:
    call = ChoiceDeltaToolCall(
        index=index,
        id=f"call_{uuid.uuid4().hex[:24]}",
        type="function",
        function=ChoiceDeltaToolCallFunction(name=name, arguments=json.dumps(arguments)),
    )
    return ChatCompletionChunk(
        id=template.id,
        created=template.created,
        model=template.model,
        object="chat.completion.chunk",
        choices=[Choice(index=0, delta=ChoiceDelta(tool_calls=[call]), finish_reason=None)],
    )


class TextToolCallStream:
    """A chunk stream in which tool calls written as text become ``tool_calls`` deltas."""

    def __init__(self, stream: ChunkStream, names: Collection[str]) -> None:
        self._stream = stream
        self._names = frozenset(names)

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        """The rewritten chunks."""
        return self._chunks()

    async def close(self) -> None:
        """Close the underlying stream."""
        await self._stream.close()

    async def _chunks(self) -> AsyncIterator[ChatCompletionChunk]:
        held = ""
        deciding = True
        template: ChatCompletionChunk | None = None
        async for chunk in self._stream:
            delta = chunk.choices[0].delta if chunk.choices else None
            content = delta.content if delta is not None else None
            if not deciding or not content or delta is None or delta.tool_calls:
                # Not text, or already known to be plain text: as it came.
                yield chunk
                continue
            template = chunk
            held += content
            if not _could_become_call(held):
                deciding = False
                yield _with_content(chunk, held)
        if not deciding or template is None:
            return
        calls = parse_tool_calls(held, self._names)
        if calls is None:
            # It looked like a call but was not one: speak it as it was.
            if held.strip():
                yield _with_content(template, held)
            return
        for index, (name, arguments) in enumerate(calls):
            yield _tool_call_chunk(template, index, name, arguments)
