"""A deliberately misbehaving OpenAI-compatible chat server, for fault-injection tests only.

Modes, switched at run time with ``POST /control {"mode": ...}``:
``ok`` streams a short fixed answer; ``hang`` accepts the request and never answers;
``error`` answers HTTP 500; ``cut`` streams a few words then drops the connection;
``slow`` streams a few words then stalls far longer than any client timeout.
``GET /last_request`` answers the last streaming request's body (what the agent's LLM client sent).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

ANSWER = "It is sunny and warm in Paris today."
MODES = ("ok", "hang", "error", "cut", "slow")


def _chunk(text: str | None, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "local",
        "choices": [
            {
                "index": 0,
                "delta": {"content": text} if text is not None else {},
                "finish_reason": finish,
            }
        ],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


def create_app() -> FastAPI:
    """The fake server; its mode lives on ``app.state``."""
    app = FastAPI()
    app.state.mode = "ok"
    app.state.requests = 0
    app.state.last_request = None

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "local", "object": "model"}]})

    @app.get("/last_request")
    async def last_request() -> JSONResponse:
        return JSONResponse({"body": app.state.last_request})

    @app.post("/control")
    async def control(request: Request) -> JSONResponse:
        mode = (await request.json()).get("mode")
        if mode not in MODES:
            return JSONResponse({"detail": f"mode must be one of {MODES}"}, status_code=400)
        app.state.mode = mode
        return JSONResponse({"mode": mode, "requests": app.state.requests})

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        app.state.requests += 1
        mode = app.state.mode
        if not body.get("stream"):
            # Warm-up, summary and cache pre-warm requests; not the conversation's turns.
            return JSONResponse(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}}],
                }
            )
        app.state.last_request = body
        if mode == "error":
            return JSONResponse({"error": {"message": "injected failure"}}, status_code=500)
        if mode == "hang":
            await asyncio.sleep(3600)
        return StreamingResponse(_stream(mode), media_type="text/event-stream")

    return app


async def _stream(mode: str) -> AsyncIterator[bytes]:
    words = ANSWER.split(" ")
    for index, word in enumerate(words):
        yield _chunk(("" if index == 0 else " ") + word)
        if index == 2 and mode == "cut":
            raise ConnectionResetError("injected: stream cut")
        if index == 2 and mode == "slow":
            await asyncio.sleep(3600)
        await asyncio.sleep(0.02)
    yield _chunk(None, finish="stop")
    yield b"data: [DONE]\n\n"


def main() -> None:
    """Run on 127.0.0.1 at the given port."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
