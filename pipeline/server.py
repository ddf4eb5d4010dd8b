"""The LAN server: the talk page, pipecat's SmallWebRTC signalling contract, and health.

Routes follow pipecat's SmallWebRTC runner so existing clients work unchanged:
``POST/PATCH /api/offer``, ``POST /start`` + ``/sessions/{id}/api/offer``, plus ``GET /health``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from loguru import logger
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    IceCandidate,
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)

from pipeline.ice_policy import loopback_only_ice
from pipeline.runtime import AgentRuntime
from pipeline.session import build_worker, run_session

WEB_DIR = Path(__file__).parent / "web"


class OfferError(ValueError):
    """A signalling request the server refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SessionManager:
    """Creates peers and their pipelines, enforces ``max_sessions``, tears all down on close."""

    def __init__(self, runtime: AgentRuntime) -> None:
        self._runtime = runtime
        # No ICE servers: host candidates are right on a LAN and a STUN lookup would both leave
        # the house and stall the answer while aiortc waits for it.
        self._handler = SmallWebRTCRequestHandler(ice_servers=[])
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started_sessions: set[str] = set()
        self._closed = False

    @property
    def active(self) -> int:
        """Sessions whose pipeline is still running."""
        return sum(1 for task in self._tasks.values() if not task.done())

    async def offer(self, body: Any, session_id: str | None = None) -> dict[str, str]:
        """Answer an SDP offer; a new peer gets a fresh pipeline."""
        request = _parse_offer(body)
        is_new_peer = not request.pc_id or request.pc_id not in self._tasks
        if is_new_peer and self.active >= self._runtime.config.server.max_sessions:
            raise OfferError(503, "the agent is busy: too many sessions, try again later")
        if not self._runtime.ready:
            raise OfferError(503, "the agent is still loading its models")
        sid = session_id or uuid.uuid4().hex[:12]

        build_errors: list[Exception] = []

        async def on_connection(connection: SmallWebRTCConnection) -> None:
            try:
                worker = build_worker(connection, self._runtime, sid)
            except Exception as error:  # noqa: BLE001 - reported to the client below
                # pipecat's handler only logs callback errors; keep it to refuse the offer.
                build_errors.append(error)
                await connection.disconnect()
                return
            task = asyncio.create_task(run_session(worker, sid), name=f"session-{sid}")
            self._tasks[connection.pc_id] = task
            pc_id = connection.pc_id
            task.add_done_callback(lambda _task: self._forget(pc_id))

        timeout = self._runtime.config.server.offer_timeout_secs
        try:
            answer = await asyncio.wait_for(
                self._handler.handle_web_request(request, on_connection), timeout
            )
        except HTTPException as error:
            raise OfferError(error.status_code, str(error.detail)) from error
        except TimeoutError as error:
            raise OfferError(504, "timed out answering the offer") from error
        # aiortc's SDP parser raises assertion, key, index and value errors on malformed input.
        except Exception as error:
            logger.debug(f"rejected offer: {type(error).__name__}: {error}")
            raise OfferError(400, f"invalid SDP offer ({type(error).__name__})") from error
        if build_errors:
            logger.error(f"[{sid}] could not build the session: {build_errors[0]!r}")
            raise OfferError(500, f"could not start a session: {build_errors[0]}")
        if answer is None:
            raise OfferError(500, "no SDP answer was produced")
        return dict(answer)

    async def patch(self, body: Any) -> None:
        """Add trickled ICE candidates to an existing peer."""
        if not isinstance(body, dict) or not isinstance(body.get("pc_id"), str):
            raise OfferError(400, "expected JSON {pc_id, candidates}")
        try:
            candidates = [IceCandidate(**c) for c in body.get("candidates") or []]
            request = SmallWebRTCPatchRequest(pc_id=body["pc_id"], candidates=candidates)
            await asyncio.wait_for(self._handler.handle_patch_request(request), 5.0)
        except HTTPException as error:
            raise OfferError(error.status_code, str(error.detail)) from error
        except Exception as error:
            raise OfferError(400, f"invalid ICE candidate ({type(error).__name__})") from error

    def _forget(self, pc_id: str) -> None:
        self._tasks.pop(pc_id, None)

    async def close(self) -> None:
        """Disconnect every peer and wait for the pipelines to finish. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await asyncio.wait_for(self._handler.close(), 10.0)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _parse_offer(body: Any) -> SmallWebRTCRequest:
    """Validate the JSON shape of an offer before any WebRTC object is created."""
    if not isinstance(body, dict):
        raise OfferError(400, "expected a JSON object {sdp, type, pc_id?, restart_pc?}")
    sdp, kind = body.get("sdp"), body.get("type")
    if not isinstance(sdp, str) or not sdp.strip():
        raise OfferError(400, "missing 'sdp'")
    if kind != "offer":
        raise OfferError(400, "'type' must be 'offer'")
    pc_id = body.get("pc_id")
    if pc_id is not None and not isinstance(pc_id, str):
        raise OfferError(400, "'pc_id' must be a string")
    restart = body.get("restart_pc")
    return SmallWebRTCRequest(
        sdp=sdp, type=kind, pc_id=pc_id, restart_pc=bool(restart) if restart is not None else None
    )


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as error:
        raise OfferError(400, "the body is not valid JSON") from error


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@asynccontextmanager
async def _running(runtime: AgentRuntime, sessions: SessionManager) -> AsyncIterator[None]:
    """Start the runtime; on the way out close sessions first, then the models' owner."""
    try:
        await runtime.start()
        server = runtime.config.server
        scheme = "https" if server.tls_certfile else "http"
        logger.info(f"jetvoice ready: open {scheme}://{server.host}:{server.port}/")
        yield
    finally:
        await sessions.close()
        await runtime.close()


def create_app(runtime: AgentRuntime) -> FastAPI:
    """Build the FastAPI app; the runtime is started and closed by the app's lifespan."""
    sessions = SessionManager(runtime)
    pending_sessions: set[str] = set()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # A server bound to loopback serves this machine only, so its WebRTC candidates stay on
        # 127.0.0.1 too (aioice would otherwise offer the LAN addresses).
        ice_scope: AbstractContextManager[None] = (
            loopback_only_ice() if _is_loopback(runtime.config.server.host) else nullcontext()
        )
        with ice_scope:
            async with _running(runtime, sessions):
                yield

    app = FastAPI(title="jetvoice", lifespan=lifespan, docs_url=None, redoc_url=None)

    app.state.runtime = runtime
    app.state.sessions = sessions

    @app.exception_handler(OfferError)
    async def offer_error(_request: Request, error: OfferError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=error.status)

    @app.get("/health")
    async def health() -> JSONResponse:
        timings = runtime.timings
        body = {
            "status": "ready" if runtime.ready else "loading",
            "profile": runtime.config.profile,
            "sessions": {"active": sessions.active, "max": runtime.config.server.max_sessions},
            "llm": {"server": runtime.config.llm.server, "running": runtime.llm_server.running},
            "startup_secs": {
                "stt_load": round(timings.stt_load, 3),
                "tts_load": round(timings.tts_load, 3),
                "llm_ready": round(timings.llm_ready, 3),
                "warm_up": round(timings.warm_up, 3),
                "total": round(timings.total, 3),
            },
        }
        return JSONResponse(body, status_code=200 if runtime.ready else 503)

    @app.post("/api/offer")
    async def offer(request: Request) -> JSONResponse:
        return JSONResponse(await sessions.offer(await _json_body(request)))

    @app.patch("/api/offer")
    async def patch_offer(request: Request) -> JSONResponse:
        await sessions.patch(await _json_body(request))
        return JSONResponse({"status": "success"})

    @app.post("/start")
    async def start(_request: Request) -> JSONResponse:
        # pipecat's prebuilt clients call /start first; hand back empty ICE servers so they
        # never ask a public STUN server.
        session_id = uuid.uuid4().hex[:12]
        pending_sessions.add(session_id)
        return JSONResponse({"sessionId": session_id, "iceConfig": {"iceServers": []}})

    @app.api_route("/sessions/{session_id}/api/offer", methods=["POST", "PATCH"])
    async def session_offer(session_id: str, request: Request) -> Response:
        if session_id not in pending_sessions:
            raise OfferError(404, "unknown session id: call POST /start first")
        body = await _json_body(request)
        if request.method == "PATCH":
            await sessions.patch(body)
            return JSONResponse({"status": "success"})
        return JSONResponse(await sessions.offer(body, session_id=session_id))

    if WEB_DIR.is_dir():
        app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app
