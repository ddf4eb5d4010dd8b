"""Who may use the signalling API: same-origin, pairing token, offer rate, body size.

One ASGI middleware in front of the whole app, checking in this order, each refusal a JSON
``{"detail": ...}``:

1. ``Origin`` present and not the server's own origin -> 403 (every route; no CORS at all).
2. On the API (``/api/*``, ``/start``, ``/sessions/*``): the pairing token, as
   ``Authorization: Bearer`` or ``X-Jetvoice-Token`` -> 401 when missing, 403 when wrong.
3. Offers (``POST /api/offer``, ``POST /start``, ``POST /sessions/*/api/offer``) per client
   address -> 429 with ``Retry-After``.
4. The body: over the cap -> 413 (before reading it when ``Content-Length`` says so); slower
   than the body timeout -> 408.

Token policy: a server bound to a non-loopback address always requires the token. A server
bound to loopback requires it only with ``--require-token``; otherwise a request without a token
is let through only when its ``Host`` is a loopback name, so a web page that rebinds its own DNS
name to 127.0.0.1 still cannot drive the API. Nothing is exempted by client address: behind a
local reverse proxy every client would look like 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from loguru import logger
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from pipeline.server.pairing import token_matches
from pipeline.server.rate_limit import RateLimiter, retry_after_header

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_HEADER = "x-jetvoice-token"
DEFAULT_PORTS = {"http": 80, "https": 443}

# Sent with every response: the talk page must never be framed (a hidden frame could trick a
# tap on the talk button), and no URL (which may carry ?token=) leaks through a Referer.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)


@dataclass(frozen=True)
class AccessPolicy:
    """What the guard enforces; built once from :class:`~pipeline.config.ServerConfig`."""

    token: str | None = field(default=None, repr=False)
    require_token: bool = True
    max_body_bytes: int = 64 * 1024
    body_timeout_secs: float = 10.0
    offer_burst: int = 10
    offer_window_secs: float = 10.0


class Refusal(Exception):
    """A request the guard answers itself."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def is_api_path(path: str) -> bool:
    """The signalling API: everything that can create or touch a session."""
    return path.startswith(("/api/", "/sessions/")) or path in ("/api", "/start")


def is_offer_request(method: str, path: str) -> bool:
    """Requests that may allocate a peer connection (rate limited)."""
    if method != "POST":
        return False
    return path in ("/api/offer", "/start") or (
        path.startswith("/sessions/") and path.endswith("/api/offer")
    )


def _hostname(host: str) -> str | None:
    """The name or address in a bind address or ``Host`` value, without brackets or port."""
    bare = host.strip()
    try:
        return str(ipaddress.ip_address(bare.strip("[]")))
    except ValueError:
        pass  # a name, or an address with a port
    try:
        return urlsplit(f"//{bare}").hostname  # lower case
    except ValueError:
        return None


def is_loopback_host(host: str | None) -> bool:
    """Whether a host names this machine only: ``localhost`` in any case (and names under
    ``.localhost``, which browsers and resolvers keep on loopback), 127.0.0.0/8 or ::1.

    The one check for bind addresses and ``Host`` header values alike: bare or bracketed IPv6,
    with or without a port.
    """
    name = _hostname(host) if host else None
    if name is None:
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def client_is_loopback(scope: Scope) -> bool:
    """The TCP peer is this machine, and it addressed the server by a loopback name."""
    client = scope.get("client")
    if not client:
        return False
    try:
        peer_is_local = ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False
    return peer_is_local and is_loopback_host(Headers(scope=scope).get("host"))


def _origin_tuple(origin: str, scheme_hint: str | None = None) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(origin if scheme_hint is None else f"{scheme_hint}://{origin}")
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if scheme_hint is None and (parts.path not in ("", "/") or parts.query or parts.username):
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def same_origin(origin: str, scope: Scope) -> bool:
    """Whether an ``Origin`` header names this server as the request reached it."""
    headers = Headers(scope=scope)
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        if not server:
            return False
        host = f"{server[0]}:{server[1]}"
    own = _origin_tuple(host, scheme_hint=str(scope.get("scheme", "http")))
    theirs = _origin_tuple(origin)
    return own is not None and theirs is not None and own == theirs


def presented_token(headers: Headers) -> str | None:
    """The token from ``Authorization: Bearer`` or ``X-Jetvoice-Token``; None when absent."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    header = headers.get(TOKEN_HEADER)
    return header.strip() if header is not None else None


def check_token(policy: AccessPolicy, scope: Scope) -> str:
    """``"paired"`` (valid token) or ``"exempt"`` (loopback, token optional); else raises."""
    headers = Headers(scope=scope)
    token = presented_token(headers)
    if token is not None:
        if policy.token is not None and token_matches(token, policy.token):
            return "paired"
        raise Refusal(
            403,
            "wrong pairing token: this device was paired with another token, or the token "
            "was rotated; open the pairing link the server shows again",
        )
    if not policy.require_token and is_loopback_host(headers.get("host")):
        return "exempt"
    raise Refusal(
        401,
        "pairing token required: open the pairing link the server shows (it ends in ?token=…) "
        "on this device",
        {"WWW-Authenticate": 'Bearer realm="jetvoice"'},
    )


def check_status_access(policy: AccessPolicy, scope: Scope) -> None:
    """Health details and metrics: this machine's own requests, or a paired device's.

    Raises:
        PermissionError: neither, with the message to answer.
    """
    if client_is_loopback(scope):
        return
    token = presented_token(Headers(scope=scope))
    if token is not None and policy.token is not None and token_matches(token, policy.token):
        return
    raise PermissionError("status details are for this machine and paired devices only")


# What an offer refused by the guard counts as in the metrics.
REFUSAL_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    408: "slow_body",
    413: "body_too_large",
    429: "rate_limited",
}


class AccessGuard:
    """ASGI middleware enforcing an :class:`AccessPolicy` (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        policy: AccessPolicy,
        limiter: RateLimiter | None = None,
        on_refusal: Callable[[str], None] | None = None,
    ) -> None:
        """``on_refusal`` is told the reason of every offer the guard refuses (for metrics)."""
        self.app = app
        self.policy = policy
        self.limiter = limiter or RateLimiter(policy.offer_burst, policy.offer_window_secs)
        self.on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request; refuse it, or pass it on with its body already read."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        try:
            receive = await self._admit(scope, receive)
        except Refusal as refusal:
            client = scope.get("client")
            # The path only: the query string may carry ?token=.
            logger.info(
                f"refused {scope['method']} {scope['path']} from "
                f"{client[0] if client else '?'}: {refusal.status} {refusal.detail}"
            )
            if self.on_refusal is not None and is_offer_request(scope["method"], scope["path"]):
                self.on_refusal(REFUSAL_REASONS.get(refusal.status, str(refusal.status)))
            response = JSONResponse(
                {"detail": refusal.detail}, status_code=refusal.status, headers=refusal.headers
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope, receive: Receive) -> Receive:
        origin = Headers(scope=scope).get("origin")
        if origin is not None and not same_origin(origin, scope):
            raise Refusal(403, "cross-origin requests are not allowed")
        path, method = scope["path"], scope["method"]
        if not is_api_path(path):
            return receive
        scope.setdefault("state", {})["pairing"] = check_token(self.policy, scope)
        if is_offer_request(method, path):
            client = scope.get("client")
            wait = self.limiter.acquire(str(client[0]) if client else "?")
            if wait > 0:
                raise Refusal(
                    429,
                    "too many call attempts from this device; wait a moment and try again",
                    {"Retry-After": retry_after_header(wait)},
                )
        return await self._buffer_body(scope, receive)

    async def _buffer_body(self, scope: Scope, receive: Receive) -> Receive:
        """Read the whole (small) body under the cap and the timeout, then replay it."""
        cap = self.policy.max_body_bytes
        too_large = Refusal(413, f"request body too large (limit {cap} bytes)")
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            try:
                if int(length) > cap:
                    raise too_large
            except ValueError as error:
                raise Refusal(400, "invalid Content-Length") from error
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.policy.body_timeout_secs):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise Refusal(400, "the client went away")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > cap:
                        raise too_large
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError as error:
            raise Refusal(408, "the request body arrived too slowly") from error
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _with_security_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
            message["headers"] = headers
        await send(message)

    return wrapped
