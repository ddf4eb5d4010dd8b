"""A scripted OpenAI-compatible chat server that calls tools, for tool-calling tests only.

``POST /control {"tool": NAME, "arguments": {...}, "as_text": false}`` scripts every turn, and
``POST /control {"turns": [{"tool": ...}, {"tool": null}, ...]}`` the next turns one by one
(then the default script again): a streaming request whose last message is the user's is
answered with a streamed call of ``NAME`` (OpenAI ``tool_calls`` deltas, the arguments split over
several chunks; with ``as_text``, the call is written as answer text, the way llama.cpp's server
sends a Qwen model's call), or with a fixed plain answer when ``tool`` is null. An argument value
``"$user"`` becomes the user's last words. The follow-up request, whose last message is the
tool's result, is answered with a sentence built from that result. ``GET /requests`` lists the
streaming requests' bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

PLAIN_ANSWER = "It is sunny and warm in Paris today."
# Keys of a tool's result worth reading out, in order of preference.
_ANSWER_KEYS = ("answer", "reply", "result", "set", "time")


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "local",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def answer_from(result: str) -> str:
    """The sentence the scripted model says after reading a tool's ``result``."""
    try:
        value = json.loads(result)
    except ValueError:
        return f"The tool said {result}."
    if isinstance(value, dict):
        if "error" in value:
            return f"Sorry, {str(value['error']).rstrip('.')}."
        for key in _ANSWER_KEYS:
            if key in value:
                return f"Here you go: {str(value[key]).rstrip('.')}."
    return f"The tool said {value}."


def _last(messages: list[dict[str, Any]], role: str) -> dict[str, Any] | None:
    return next((m for m in reversed(messages) if m.get("role") == role), None)


def _fill(arguments: dict[str, Any], user_text: str) -> dict[str, Any]:
    return {k: (user_text if v == "$user" else v) for k, v in arguments.items()}


def create_app() -> FastAPI:
    """The scripted server; its script lives on ``app.state``."""
    app = FastAPI()
    app.state.tool = None
    app.state.arguments = {}
    app.state.as_text = False
    app.state.turns = []
    app.state.requests = []

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "local", "object": "model"}]})

    @app.get("/requests")
    async def requests() -> JSONResponse:
        return JSONResponse({"requests": app.state.requests})

    @app.post("/control")
    async def control(request: Request) -> JSONResponse:
        body = await request.json()
        if "turns" in body:
            app.state.turns = list(body["turns"])
        else:
            app.state.tool = body.get("tool")
            app.state.arguments = body.get("arguments") or {}
            app.state.as_text = bool(body.get("as_text"))
        return JSONResponse({"tool": app.state.tool, "requests": len(app.state.requests)})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        if not body.get("stream"):
            # Warm-up and cache pre-warm requests; not the conversation's turns.
            return JSONResponse(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}}],
                }
            )
        app.state.requests.append(body)
        messages: list[dict[str, Any]] = body.get("messages", [])
        if messages and messages[-1].get("role") == "tool":
            return _stream_text(answer_from(str(messages[-1].get("content", ""))))
        turn = (
            app.state.turns.pop(0)
            if app.state.turns
            else {
                "tool": app.state.tool,
                "arguments": app.state.arguments,
                "as_text": app.state.as_text,
            }
        )
        if turn.get("tool"):
            user = _last(messages, "user")
            user_text = str(user.get("content", "")) if user else ""
            arguments = _fill(turn.get("arguments") or {}, user_text)
            return StreamingResponse(
                _tool_call(turn["tool"], arguments, as_text=bool(turn.get("as_text"))),
                media_type="text/event-stream",
            )
        return _stream_text(PLAIN_ANSWER)

    return app


def _stream_text(text: str) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for index, word in enumerate(text.split(" ")):
            yield _chunk({"content": ("" if index == 0 else " ") + word})
            await asyncio.sleep(0.02)
        yield _chunk({}, finish="stop")
        yield b"data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")


async def _tool_call(
    name: str, arguments: dict[str, Any], *, as_text: bool
) -> AsyncIterator[bytes]:
    encoded = json.dumps(arguments)
    if as_text:
        text = f'{{"name": "{name}", "arguments": {encoded}}}'
        for start in range(0, len(text), 8):
            yield _chunk({"content": text[start : start + 8]})
            await asyncio.sleep(0.01)
        yield _chunk({}, finish="stop")
    else:
        call = {"index": 0, "id": "call_scripted", "type": "function"}
        yield _chunk({"role": "assistant", "tool_calls": [{**call, "function": {"name": name}}]})
        third = max(1, len(encoded) // 3)
        for start in range(0, len(encoded), third):
            piece = encoded[start : start + third]
            yield _chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            await asyncio.sleep(0.01)
        yield _chunk({}, finish="tool_calls")
    yield b"data: [DONE]\n\n"


def main() -> None:
    """Run on 127.0.0.1 at the given port."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
