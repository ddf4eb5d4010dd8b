"""The LAN server: the talk page, pipecat's SmallWebRTC signalling contract, and health.

Routes follow pipecat's SmallWebRTC runner so existing clients work unchanged:
``POST/PATCH /api/offer``, ``POST /start`` + ``/sessions/{id}/api/offer``, plus ``GET /health``.
Around them: ``GET /api/pairing`` (is this device paired?), ``GET /ca.crt`` (the local CA, for
phones to trust) and ``GET /pair`` (the pairing QR code, for this machine's own browser only).
Access control (same-origin, pairing token, offer rate, body cap) is :mod:`pipeline.access`.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from loguru import logger
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    IceCandidate,
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)

from pipeline.access import AccessGuard, AccessPolicy, client_is_loopback
from pipeline.certs import public_ca_pem
from pipeline.config import ServerConfig
from pipeline.ice_policy import loopback_only_ice
from pipeline.pairing import pairing_url, qr_svg
from pipeline.runtime import AgentRuntime
from pipeline.session import build_worker, run_session

WEB_DIR = Path(__file__).parent / "web"
# pipecat's /start hands out session ids before any offer; keep only the newest few.
MAX_PENDING_SESSIONS = 64
# Sessions last minutes; a client told to come back sooner would only be refused again.
BUSY_RETRY_AFTER_SECS = 10
LOADING_RETRY_AFTER_SECS = 5


class OfferError(ValueError):
    """A signalling request the server refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class WebRequestHandler(Protocol):
    """The part of pipecat's ``SmallWebRTCRequestHandler`` the session manager uses."""

    async def handle_web_request(
        self,
        request: SmallWebRTCRequest,
        webrtc_connection_callback: Callable[[SmallWebRTCConnection], Awaitable[None]],
    ) -> Any:
        """Create or renegotiate a peer for an offer; returns the answer."""

    async def handle_patch_request(self, request: SmallWebRTCPatchRequest) -> None:
        """Add trickled ICE candidates."""

    async def close(self) -> None:
        """Close every peer."""


class SessionManager:
    """Creates peers and their pipelines, enforces ``max_sessions``, tears all down on close."""

    def __init__(self, runtime: AgentRuntime, handler: WebRequestHandler | None = None) -> None:
        self._runtime = runtime
        # No ICE servers: host candidates are right on a LAN and a STUN lookup would both leave
        # the house and stall the answer while aiortc waits for it.
        self._handler: WebRequestHandler = handler or SmallWebRTCRequestHandler(ice_servers=[])
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # New peers whose offer is being answered: they count against max_sessions already, so
        # concurrent offers cannot all pass the check before any of them is registered.
        self._reserved = 0
        self._closed = False

    @property
    def active(self) -> int:
        """Sessions whose pipeline is still running."""
        return sum(1 for task in self._tasks.values() if not task.done())

    async def offer(self, body: Any, session_id: str | None = None) -> dict[str, str]:
        """Answer an SDP offer; a new peer gets a fresh pipeline."""
        request = _parse_offer(body)
        if not self._runtime.ready:
            raise OfferError(
                503,
                "the agent is still loading its models",
                retry_after=LOADING_RETRY_AFTER_SECS,
            )
        is_new_peer = not request.pc_id or request.pc_id not in self._tasks
        if not is_new_peer:
            return await self._answer(request, session_id, reserved=False)
        if self.active + self._reserved >= self._runtime.config.server.max_sessions:
            # Refused before pipecat's handler: no peer connection is created.
            raise OfferError(
                503,
                "the agent is busy: too many sessions, try again later",
                retry_after=BUSY_RETRY_AFTER_SECS,
            )
        return await self._answer(request, session_id, reserved=True)

    async def _answer(
        self, request: SmallWebRTCRequest, session_id: str | None, *, reserved: bool
    ) -> dict[str, str]:
        sid = session_id or uuid.uuid4().hex[:12]
        # The reservation turns into a running session (counted by `active`) or is given back.
        held = [reserved]
        if reserved:
            self._reserved += 1

        def release() -> None:
            if held[0]:
                held[0] = False
                self._reserved -= 1

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
            release()
            pc_id = connection.pc_id
            task.add_done_callback(lambda _task: self._forget(pc_id))

        timeout = self._runtime.config.server.offer_timeout_secs
        try:
            return await self._handle(request, on_connection, build_errors, sid, timeout)
        finally:
            release()

    async def _handle(
        self,
        request: SmallWebRTCRequest,
        on_connection: Callable[[SmallWebRTCConnection], Awaitable[None]],
        build_errors: list[Exception],
        sid: str,
        timeout: float,
    ) -> dict[str, str]:
        """pipecat's handler under a timeout, its errors mapped to HTTP statuses."""
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


def access_policy(server: ServerConfig) -> AccessPolicy:
    """The access rules for a server configuration (token always required off loopback)."""
    return AccessPolicy(
        token=server.pairing_token,
        require_token=server.require_token or not _is_loopback(server.host),
        max_body_bytes=server.max_body_bytes,
        body_timeout_secs=server.body_timeout_secs,
        offer_burst=server.offer_burst,
        offer_window_secs=server.offer_window_secs,
    )


@asynccontextmanager
async def _running(
    runtime: AgentRuntime, sessions: SessionManager, on_ready: Callable[[], None] | None
) -> AsyncIterator[None]:
    """Start the runtime; on the way out close sessions first, then the models' owner."""
    try:
        await runtime.start()
        server = runtime.config.server
        logger.info(f"jetvoice ready: open {server.scheme}://{server.host}:{server.port}/")
        if on_ready is not None:
            on_ready()
        yield
    finally:
        await sessions.close()
        await runtime.close()


def create_app(
    runtime: AgentRuntime,
    *,
    sessions: SessionManager | None = None,
    on_ready: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the FastAPI app; the runtime is started and closed by the app's lifespan.

    ``on_ready`` runs once the models are loaded (the CLI prints the pairing banner there);
    ``sessions`` lets tests put a spy in front of pipecat's request handler.
    """
    sessions = sessions or SessionManager(runtime)
    server_config = runtime.config.server
    pending_sessions: OrderedDict[str, None] = OrderedDict()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # A server bound to loopback serves this machine only, so its WebRTC candidates stay on
        # 127.0.0.1 too (aioice would otherwise offer the LAN addresses).
        ice_scope: AbstractContextManager[None] = (
            loopback_only_ice() if _is_loopback(runtime.config.server.host) else nullcontext()
        )
        with ice_scope:
            async with _running(runtime, sessions, on_ready):
                yield

    app = FastAPI(
        title="jetvoice",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(AccessGuard, policy=access_policy(server_config))

    app.state.runtime = runtime
    app.state.sessions = sessions

    @app.exception_handler(OfferError)
    async def offer_error(_request: Request, error: OfferError) -> JSONResponse:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        return JSONResponse({"detail": str(error)}, status_code=error.status, headers=headers)

    @app.get("/health")
    async def health() -> JSONResponse:
        timings = runtime.timings
        body = {
            "status": "ready" if runtime.ready else "loading",
            "profile": runtime.config.profile,
            "sessions": {"active": sessions.active, "max": runtime.config.server.max_sessions},
            "llm": {
                "server": runtime.config.llm.server,
                "running": runtime.llm_server.running,
                "restarts": runtime.llm_server.restarts,
            },
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
        pending_sessions[session_id] = None
        while len(pending_sessions) > MAX_PENDING_SESSIONS:
            pending_sessions.popitem(last=False)
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

    @app.get("/api/pairing")
    async def pairing(request: Request) -> JSONResponse:
        # Reached only past the access guard: a device without a required token got 401/403.
        return JSONResponse(
            {
                "paired": request.state.pairing == "paired",
                "token_required": access_policy(server_config).require_token,
            },
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/ca.crt")
    async def ca_certificate() -> Response:
        if server_config.tls_ca_certfile is None:
            raise OfferError(404, "this server does not use the jetvoice local CA")
        pem = await asyncio.to_thread(public_ca_pem, server_config.tls_ca_certfile)
        # This MIME type makes Android and iOS offer to install it as a CA certificate.
        return Response(
            pem,
            media_type="application/x-x509-ca-cert",
            headers={"Content-Disposition": 'attachment; filename="jetvoice-ca.crt"'},
        )

    @app.get("/pair")
    async def pair(request: Request) -> HTMLResponse:
        if not client_is_loopback(request.scope):
            raise OfferError(403, "the pairing page is shown only on the machine running jetvoice")
        return HTMLResponse(
            pairing_page(server_config),
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            },
        )

    if WEB_DIR.is_dir():
        app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app


def pairing_page(server: ServerConfig) -> str:
    """The /pair page: the pairing link as a QR code and text, and how to trust the CA."""
    urls = server.public_urls or (f"{server.scheme}://{server.host}:{server.port}/",)
    token = server.pairing_token
    if token is None:
        body = "<p>This server has no pairing token.</p>"
    else:
        link = pairing_url(urls[0], token)
        others = "".join(
            f"<li><code>{html.escape(pairing_url(u, token))}</code></li>" for u in urls[1:]
        )
        ca = (
            f"<p>First time on a device: open <code>{html.escape(urls[0].rstrip('/'))}"
            "/ca.crt</code> and trust the certificate (see the README), then scan.</p>"
            if server.tls_ca_certfile
            else ""
        )
        body = (
            f"<p>Scan with the phone's camera, or open the link on the device:</p>"
            f'<div class="qr">{qr_svg(link)}</div>'
            f"<p><code>{html.escape(link)}</code></p>"
            + (f"<p>Other addresses of this machine:</p><ul>{others}</ul>" if others else "")
            + ca
            + "<p>The link contains the pairing token: share it only with your own devices. "
            "<code>jetvoice serve --new-token</code> unpairs every device.</p>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        "<title>jetvoice: pair a device</title><style>"
        "body{font:16px/1.45 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}"
        ".qr{background:#fff;display:inline-block;padding:.5rem;border-radius:.5rem}"
        ".qr svg{width:min(18rem,80vw);height:auto;display:block}"
        "code{overflow-wrap:anywhere}</style></head><body>"
        f"<h1>Pair a phone or laptop with jetvoice</h1>{body}</body></html>"
    )
