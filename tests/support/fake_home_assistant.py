"""A stand-in for Home Assistant's REST API (``/api/conversation/process``), for tests only.

It checks the bearer token (401 otherwise) and answers each command with "Done: <command>".
Modes, switched with ``POST /control {"mode": ...}``: ``ok``; ``hang`` never answers;
``error`` answers HTTP 500; ``not_json`` answers 200 with HTML. ``GET /commands`` lists the
commands received.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

TOKEN = "test-token"
MODES = ("ok", "hang", "error", "not_json")


def create_app(token: str = TOKEN) -> FastAPI:
    """The fake; its mode and the commands it got live on ``app.state``."""
    app = FastAPI()
    app.state.mode = "ok"
    app.state.commands = []

    @app.post("/control")
    async def control(request: Request) -> JSONResponse:
        mode = (await request.json()).get("mode")
        if mode not in MODES:
            return JSONResponse({"detail": f"mode must be one of {MODES}"}, status_code=400)
        app.state.mode = mode
        return JSONResponse({"mode": mode})

    @app.get("/commands")
    async def commands() -> JSONResponse:
        return JSONResponse({"commands": app.state.commands})

    @app.post("/api/conversation/process")
    async def process(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"message": "Unauthorized"}, status_code=401)
        body = await request.json()
        app.state.commands.append(body)
        mode = app.state.mode
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "error":
            return JSONResponse({"message": "boom"}, status_code=500)
        if mode == "not_json":
            return HTMLResponse("<html>login</html>")
        speech = f"Done: {body.get('text', '')}"
        return JSONResponse(
            {
                "response": {
                    "response_type": "action_done",
                    "language": body.get("language", "en"),
                    "speech": {"plain": {"speech": speech, "extra_data": None}},
                },
                "conversation_id": None,
            }
        )

    return app


def main() -> None:
    """Run on 127.0.0.1 at the given port."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
