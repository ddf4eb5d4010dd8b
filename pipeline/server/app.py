"""The LAN server: the talk page, pipecat's SmallWebRTC signalling contract, health, metrics.

Routes follow pipecat's SmallWebRTC runner so existing clients work unchanged:
``POST/PATCH /api/offer`` (``{"join": <session id>}`` in an offer joins a running conversation,
see :mod:`pipeline.sessions.party`), ``POST /start`` + ``/sessions/{id}/api/offer``, plus
``GET /health`` and ``GET /metrics`` (Prometheus text). Around them: ``GET /api/pairing`` (is this
device paired?), ``GET /ca.crt`` (the local CA, for phones to trust) and ``GET /pair`` (the pairing
QR code, for this machine's own browser only). Access control (same-origin, pairing token, offer
rate, body cap) is :mod:`pipeline.server.access`; sessions are :mod:`pipeline.sessions.manager`.

``/health`` and ``/metrics`` tell when someone in the house is talking to the agent, so their
details are for this machine (a loopback client addressing a loopback name) and for paired
devices (the token). Anyone else gets only ``{"status"}`` from ``/health`` (an unpaired page
checks that the server is there) and 401/403 from ``/metrics``.
"""

from __future__ import annotations

import asyncio
import html
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from loguru import logger
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from pipeline.config import ServerConfig
from pipeline.ops.memory import freeze_startup_heap
from pipeline.ops.metrics import PROMETHEUS_CONTENT_TYPE
from pipeline.runtime import AgentRuntime
from pipeline.server.access import (
    AccessGuard,
    AccessPolicy,
    check_status_access,
    client_is_loopback,
    is_loopback_host,
)
from pipeline.server.certs import public_ca_pem
from pipeline.server.pairing import pairing_url, qr_svg
from pipeline.sessions.manager import OfferError, SessionManager
from pipeline.webrtc.ice_policy import own_machine_ice

__all__ = ["OfferError", "SessionManager", "access_policy", "create_app"]

WEB_DIR = Path(__file__).parent / "web"
# pipecat's /start hands out session ids before any offer; keep only the newest few.
MAX_PENDING_SESSIONS = 64
# With JETVOICE_ASYNCIO_DEBUG=1: any loop callback longer than this is logged by asyncio.
SLOW_CALLBACK_SECS = 0.05


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as error:
        raise OfferError(400, "the body is not valid JSON", reason="invalid_offer") from error


def access_policy(server: ServerConfig) -> AccessPolicy:
    """The access rules for a server configuration (token always required off loopback)."""
    return AccessPolicy(
        token=server.pairing_token,
        require_token=server.require_token or not is_loopback_host(server.host),
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
    if runtime.config.server.asyncio_debug:
        # Every callback that holds the loop longer than this is logged ("Executing ... took").
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = SLOW_CALLBACK_SECS
        logger.warning(f"asyncio debug mode: logging callbacks over {SLOW_CALLBACK_SECS} s")
    try:
        await runtime.start()
        frozen = freeze_startup_heap()
        logger.debug(f"{frozen} start-up objects exempted from garbage collection")
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
        # A server bound to loopback serves this machine only, so its WebRTC talks only to this
        # machine's own addresses, where a browser on this machine calls from (ice_policy.py).
        ice_scope: AbstractContextManager[None] = (
            own_machine_ice() if is_loopback_host(runtime.config.server.host) else nullcontext()
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
    policy = access_policy(server_config)
    app.add_middleware(AccessGuard, policy=policy, on_refusal=runtime.metrics.session_refused)

    app.state.runtime = runtime
    app.state.sessions = sessions

    @app.exception_handler(OfferError)
    async def offer_error(_request: Request, error: OfferError) -> JSONResponse:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
        return JSONResponse({"detail": str(error)}, status_code=error.status, headers=headers)

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        status = "ready" if runtime.ready else "loading"
        code = 200 if runtime.ready else 503
        try:
            check_status_access(policy, request.scope)
        except PermissionError:
            return JSONResponse({"status": status}, status_code=code)
        return JSONResponse(health_report(runtime, sessions), status_code=code)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        try:
            check_status_access(policy, request.scope)
        except PermissionError as refusal:
            raise OfferError(401, str(refusal), reason="unauthorized") from None
        text = runtime.metrics.render(RuntimeGauges(runtime))
        return Response(text, media_type=PROMETHEUS_CONTENT_TYPE)

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
            raise OfferError(
                404, "unknown session id: call POST /start first", reason="unknown_session"
            )
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
                "token_required": policy.require_token,
            },
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/ca.crt")
    async def ca_certificate() -> Response:
        if server_config.tls_ca_certfile is None:
            raise OfferError(
                404, "this server does not use the jetvoice local CA", reason="not_found"
            )
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
            raise OfferError(
                403,
                "the pairing page is shown only on the machine running jetvoice",
                reason="forbidden",
            )
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


def health_report(runtime: AgentRuntime, sessions: SessionManager) -> dict[str, Any]:
    """The full ``/health`` body: readiness of each model and the LLM server, sessions, tasks."""
    timings = runtime.timings
    return {
        "status": "ready" if runtime.ready else "loading",
        "profile": runtime.config.profile,
        "sessions": {
            "active": sessions.active,
            "max": runtime.config.server.max_sessions,
            "peers": sessions.handler.peer_count,
            "guests": sessions.guests,
        },
        "models": runtime.models_status(),
        "llm": {
            "server": runtime.config.llm.server,
            "running": runtime.llm_server.running,
            "serving": runtime.llm_server.serving,
            "restarts": runtime.llm_server.restarts,
        },
        "tasks": len(asyncio.all_tasks()),
        "startup_secs": {
            "stt_load": round(timings.stt_load, 3),
            "tts_load": round(timings.tts_load, 3),
            "llm_ready": round(timings.llm_ready, 3),
            "warm_up": round(timings.warm_up, 3),
            "total": round(timings.total, 3),
        },
    }


class RuntimeGauges:
    """A prometheus_client collector of values read from the runtime at scrape time."""

    def __init__(self, runtime: AgentRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> list[Metric]:
        """The runtime's state now, next to the counters the sessions keep."""
        runtime = self._runtime
        ready = GaugeMetricFamily(
            "jetvoice_ready",
            "1 once the models are loaded and the LLM server answers.",
            value=float(runtime.ready),
        )
        tasks = GaugeMetricFamily(
            "jetvoice_asyncio_tasks",
            "asyncio tasks alive in the agent.",
            value=len(asyncio.all_tasks()),
        )
        llm_up = GaugeMetricFamily(
            "jetvoice_llm_server_up",
            "1 while the LLM server process runs (always 1 for an external server).",
            value=float(runtime.llm_server.running),
        )
        llm_restarts = CounterMetricFamily(
            "jetvoice_llm_server_restarts",
            "Times the LLM server died and was restarted.",
            value=runtime.llm_server.restarts,
        )
        loaded = GaugeMetricFamily(
            "jetvoice_model_loaded", "1 when the model is loaded in this process.", labels=["model"]
        )
        loads = CounterMetricFamily(
            "jetvoice_model_loads",
            "Times the model was constructed in this process (1 when shared as it should).",
            labels=["model"],
        )
        for name, status in runtime.models_status().items():
            loaded.add_metric([name], float(status["loaded"]))
            loads.add_metric([name], float(status["loads"]))
        return [ready, tasks, llm_up, llm_restarts, loaded, loads]


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
