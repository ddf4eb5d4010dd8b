"""Tool calls that llama.cpp's server streams as text become real tool calls; plain answers pass
through untouched and undelayed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta

from services.text_tool_calls import TextToolCallStream, parse_tool_calls

NAMES = ("calculate", "get_current_time")


@pytest.mark.parametrize(
    ("text", "calls"),
    [
        # What qwen2.5-coder-0.5b answers through llama-cpp-python's server: bare JSON.
        (
            '{"name": "calculate", "arguments": {"expression": "17 * 23"}}',
            [("calculate", {"expression": "17 * 23"})],
        ),
        # Qwen's documented hermes format, two calls.
        (
            '<tool_call>\n{"name": "get_current_time", "arguments": {}}\n</tool_call>\n'
            '<tool_call>\n{"name": "calculate", "arguments": {"expression": "1+1"}}\n</tool_call>',
            [("get_current_time", {}), ("calculate", {"expression": "1+1"})],
        ),
        # Unterminated tag at the end of the budget; arguments as a JSON string.
        (
            '<tool_call>{"name": "calculate", "arguments": "{\\"expression\\": \\"2*3\\"}"}',
            [("calculate", {"expression": "2*3"})],
        ),
        ('{"name": "get_current_time"}', [("get_current_time", {})]),
        # Now and then in a Markdown fence.
        (
            '```json\n{"name": "calculate", "arguments": {"expression": "1"}}\n```',
            [("calculate", {"expression": "1"})],
        ),
        ('{"name": "get_current_time", "arguments": [1]}', [("get_current_time", {})]),
        # A made-up tool is dropped.
        ('{"name": "get_weather", "arguments": {"city": "Paris"}}', []),
        ("It is three o'clock.", None),
        ('{"answer": 4}', None),
        ("{not json", None),
    ],
)
def test_parse_tool_calls(text: str, calls: list[tuple[str, dict[str, object]]] | None) -> None:
    assert parse_tool_calls(text, NAMES) == calls


class FakeStream:
    """A stream of content chunks, like the OpenAI client's ``AsyncStream``."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.closed = False

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[ChatCompletionChunk]:
        yield _chunk(None, role=True)
        for piece in self.pieces:
            yield _chunk(piece)
        yield _chunk(None, finish="stop")

    async def close(self) -> None:
        self.closed = True


def _chunk(
    content: str | None, *, role: bool = False, finish: str | None = None
) -> ChatCompletionChunk:
    delta = ChoiceDelta(content=content, role="assistant" if role else None)
    return ChatCompletionChunk(
        id="c",
        created=0,
        model="local",
        object="chat.completion.chunk",
        choices=[Choice(index=0, delta=delta, finish_reason=finish)],  # type: ignore[arg-type]
    )


async def _collect(pieces: list[str]) -> tuple[str, list[tuple[str | None, str | None]]]:
    stream = FakeStream(pieces)
    wrapped = TextToolCallStream(stream, NAMES)
    text, calls = "", []
    async for chunk in wrapped:
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for call in delta.tool_calls or []:
            assert call.function is not None
            calls.append((call.function.name, call.function.arguments))
    await wrapped.close()
    assert stream.closed
    return text, calls


@pytest.mark.asyncio
async def test_plain_text_passes_through_as_it_streams() -> None:
    stream = TextToolCallStream(FakeStream(["It", " is", " sunny", "."]), NAMES)
    seen = []
    async for chunk in stream:
        seen.append(chunk.choices[0].delta.content)
    # The first word is released at once, not held to the end.
    assert seen == [None, "It", " is", " sunny", ".", None]


@pytest.mark.asyncio
async def test_a_call_written_as_text_becomes_a_tool_call() -> None:
    pieces = ['{"name', '": "calculate", "argu', 'ments": {"expression": "17 * 23"}}']
    text, calls = await _collect(pieces)
    assert text == ""
    assert calls == [("calculate", '{"expression": "17 * 23"}')]


@pytest.mark.asyncio
async def test_a_tagged_call_after_whitespace_becomes_a_tool_call() -> None:
    pieces = [
        "\n",
        "<tool",
        "_call>",
        '\n{"name": "get_current_time", "arguments": {}}\n',
        "</tool_call>",
    ]
    text, calls = await _collect(pieces)
    assert (text, calls) == ("", [("get_current_time", "{}")])


@pytest.mark.asyncio
async def test_a_fenced_call_becomes_a_tool_call() -> None:
    pieces = ["``", "`json\n", '{"name": "get_current_time", "arguments": {}}', "\n```"]
    assert await _collect(pieces) == ("", [("get_current_time", "{}")])


@pytest.mark.asyncio
async def test_text_that_only_starts_like_a_tag_is_spoken() -> None:
    text, calls = await _collect(["<", "th", "ink>hm</think>Hello."])
    assert (text, calls) == ("<think>hm</think>Hello.", [])


@pytest.mark.asyncio
async def test_json_that_is_not_a_call_is_spoken_as_it_was() -> None:
    text, calls = await _collect(['{"answer"', ": 4}"])
    assert (text, calls) == ('{"answer": 4}', [])


@pytest.mark.asyncio
async def test_a_call_to_an_unknown_tool_says_nothing() -> None:
    # Nothing to say: the empty-answer guard turns that into the apology.
    text, calls = await _collect(['{"name": "get_weather", "arguments": {}}'])
    assert (text, calls) == ("", [])
