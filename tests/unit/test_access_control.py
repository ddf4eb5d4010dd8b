"""Every refusal of the HTTP layer: token, Origin, rate, body, capacity, the loopback-only page.

The app runs in-process (httpx's ASGI transport, no sockets) with a runtime whose models are
never loaded and a spy in place of pipecat's request handler, so a test can tell whether a
refused request got anywhere near a peer connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiortc.sdp import SessionDescription
from cryptography import x509
from loguru import logger

from pipeline.config import AgentConfig, LLMConfig, ServerConfig, STTConfig, TTSConfig
from pipeline.runtime import AgentRuntime
from pipeline.server.access import is_loopback_host
from pipeline.server.app import SessionManager, access_policy, create_app
from pipeline.server.certs import ensure_certificates
from pipeline.server.lan_addresses import LocalNames
from tests.support.sdp import chromium_offer

TOKEN = "t0ken-for-tests-0123456789abcdefghijklmnop"
LAN_CLIENT = ("192.0.2.10", 50000)  # in-process only: nothing is sent anywhere
LOOPBACK_CLIENT = ("127.0.0.1", 50000)
# A real browser's offer: the server validates SDP before its (spy) handler sees it.
OFFER = {"sdp": chromium_offer(), "type": "offer"}
# A server bound to the LAN, as `jetvoice serve --host 0.0.0.0 --tls` runs.
LAN_BASE = "https://192.0.2.2:8430"


class SpyHandler:
    """Stands in for pipecat's SmallWebRTCRequestHandler and counts what reaches it."""

    peer_count = 0

    def __init__(self, hold: asyncio.Event | None = None) -> None:
        self.offers = 0
        self.patches = 0
        self.hold = hold
        self.entered = asyncio.Event()

    async def handle_web_request(
        self, request: Any, webrtc_connection_callback: Callable[[Any], Awaitable[None]]
    ) -> dict[str, str]:
        self.offers += 1
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        return {"sdp": "v=0\r\n", "type": "answer", "pc_id": f"pc-{self.offers}"}

    async def handle_patch_request(self, request: Any) -> None:
        self.patches += 1

    async def close(self) -> None:
        return None


def _agent_config(server: ServerConfig) -> AgentConfig:
    nowhere = Path("/nonexistent")
    return AgentConfig(
        profile="test",
        stt=STTConfig(model_dir=nowhere),
        tts=TTSConfig(model_path=nowhere, voices_path=nowhere),
        llm=LLMConfig(server="external", base_url="http://127.0.0.1:9/v1"),
        server=server,
        warmup=False,
    )


class Harness:
    """An app, its spy handler and an httpx client factory."""

    def __init__(self, server: ServerConfig, hold: asyncio.Event | None = None) -> None:
        self.runtime = AgentRuntime(_agent_config(server))
        self.runtime.ready = True  # no models: the HTTP layer is what is under test
        self.spy = SpyHandler(hold)
        self.app = create_app(self.runtime, sessions=SessionManager(self.runtime, self.spy))

    def client(
        self, base_url: str = LAN_BASE, client: tuple[str, int] = LAN_CLIENT
    ) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=client)
        return httpx.AsyncClient(transport=transport, base_url=base_url, timeout=10.0)


def lan_server(**overrides: Any) -> ServerConfig:
    values: dict[str, Any] = {
        "host": "0.0.0.0",
        "pairing_token": TOKEN,
        "tls_certfile": Path("/unused/server.crt"),
        "tls_keyfile": Path("/unused/server.key"),
    }
    values.update(overrides)
    return ServerConfig(**values)


@pytest.fixture
def harness() -> Harness:
    return Harness(lan_server())


@pytest_asyncio.fixture
async def client(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with harness.client() as http:
        yield http


AUTH = {"Authorization": f"Bearer {TOKEN}"}
API_CALLS = [
    ("POST", "/api/offer", OFFER),
    ("PATCH", "/api/offer", {"pc_id": "pc-1", "candidates": []}),
    ("POST", "/start", None),
    ("POST", "/sessions/abc/api/offer", OFFER),
    ("PATCH", "/sessions/abc/api/offer", {"pc_id": "pc-1", "candidates": []}),
    ("GET", "/api/pairing", None),
]


# --- pairing token -----------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(("method", "path", "body"), API_CALLS)
async def test_api_without_token_is_401(
    harness: Harness, client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == 401
    assert "pairing token required" in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert harness.spy.offers == 0 and harness.spy.patches == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("call", API_CALLS, ids=[f"{m} {p}" for m, p, _ in API_CALLS])
@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-token"},
        {"X-Jetvoice-Token": "wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer "},
    ],
    ids=["bearer", "x-jetvoice-token", "prefix-of-longer", "empty"],
)
async def test_api_with_wrong_token_is_403(
    harness: Harness,
    client: httpx.AsyncClient,
    call: tuple[str, str, Any],
    headers: dict[str, str],
) -> None:
    method, path, body = call
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status_code == 403
    assert "wrong pairing token" in response.json()["detail"]
    assert harness.spy.offers == 0 and harness.spy.patches == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "headers", [AUTH, {"X-Jetvoice-Token": TOKEN}], ids=["bearer", "x-jetvoice-token"]
)
async def test_offer_with_token_reaches_the_handler(
    harness: Harness, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post("/api/offer", json=OFFER, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "answer"
    assert harness.spy.offers == 1
    pairing = await client.get("/api/pairing", headers=headers)
    assert pairing.json() == {"paired": True, "token_required": True}


@pytest.mark.asyncio
async def test_the_token_in_the_url_is_not_a_credential(client: httpx.AsyncClient) -> None:
    """Only headers count: a URL (logs, history, Referer) must never be enough."""
    response = await client.post(f"/api/offer?token={TOKEN}", json=OFFER)
    assert response.status_code == 401


def test_a_server_off_loopback_always_requires_the_token() -> None:
    for host in ("0.0.0.0", "::", "192.0.2.2", "jetvoice.lan"):
        assert access_policy(ServerConfig(host=host, require_token=False)).require_token
    assert not access_policy(ServerConfig(host="127.0.0.1")).require_token
    assert access_policy(ServerConfig(host="127.0.0.1", require_token=True)).require_token


@pytest.mark.asyncio
async def test_loopback_server_without_require_token_exempts_loopback_hosts_only() -> None:
    harness = Harness(ServerConfig(host="127.0.0.1", pairing_token=TOKEN))
    async with harness.client("http://127.0.0.1:8430", LOOPBACK_CLIENT) as local:
        response = await local.post("/api/offer", json=OFFER)
        assert response.status_code == 200, response.text
        assert (await local.get("/api/pairing")).json() == {
            "paired": False,
            "token_required": False,
        }
        # A present token is still checked.
        wrong = await local.post("/api/offer", json=OFFER, headers={"X-Jetvoice-Token": "x"})
        assert wrong.status_code == 403
    # A page whose own DNS name was rebound to 127.0.0.1 sends its name as Host: no exemption.
    async with harness.client("http://rebound.example:8430", LOOPBACK_CLIENT) as rebound:
        assert (await rebound.post("/api/offer", json=OFFER)).status_code == 401
    assert harness.spy.offers == 1


@pytest.mark.asyncio
async def test_require_token_on_loopback() -> None:
    harness = Harness(ServerConfig(host="127.0.0.1", pairing_token=TOKEN, require_token=True))
    async with harness.client("http://127.0.0.1:8430", LOOPBACK_CLIENT) as local:
        assert (await local.post("/api/offer", json=OFFER)).status_code == 401
        assert (await local.post("/api/offer", json=OFFER, headers=AUTH)).status_code == 200


# --- same origin -------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "http://192.0.2.2:8430",  # same host, other scheme
        "https://192.0.2.2:8431",  # other port
        "https://192.0.2.2.evil.example:8430",
        "not a url",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/offer"), ("GET", "/"), ("OPTIONS", "/api/offer")]
)
async def test_foreign_origin_is_403(
    harness: Harness, client: httpx.AsyncClient, origin: str, method: str, path: str
) -> None:
    headers = {**AUTH, "Origin": origin, "Access-Control-Request-Method": "POST"}
    response = await client.request(method, path, json=OFFER, headers=headers)
    assert response.status_code == 403
    assert response.json()["detail"] == "cross-origin requests are not allowed"
    assert "access-control-allow-origin" not in response.headers
    assert harness.spy.offers == 0


@pytest.mark.asyncio
async def test_same_origin_is_accepted(harness: Harness, client: httpx.AsyncClient) -> None:
    for origin in (LAN_BASE, "https://192.0.2.2:8430/", "HTTPS://192.0.2.2:8430"):
        response = await client.post("/api/offer", json=OFFER, headers={**AUTH, "Origin": origin})
        assert response.status_code == 200, (origin, response.text)
    async with harness.client("https://[fd00::2]:443") as v6:
        response = await v6.post(
            "/api/offer", json=OFFER, headers={**AUTH, "Origin": "https://[fd00::2]"}
        )
        assert response.status_code == 200, response.text


@pytest.mark.asyncio
async def test_no_permissive_cors_anywhere(client: httpx.AsyncClient) -> None:
    for method, path in [("GET", "/"), ("GET", "/health"), ("OPTIONS", "/api/offer")]:
        response = await client.request(method, path, headers=AUTH)
        assert "access-control-allow-origin" not in response.headers, path
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    offer = await client.post("/api/offer", json=OFFER, headers=AUTH)
    assert "access-control-allow-origin" not in offer.headers


# --- rate limit, body, capacity ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_offer_flood_gets_429_with_retry_after(harness: Harness) -> None:
    statuses: list[int] = []
    retry_after: list[int] = []
    async with harness.client() as client:
        for _ in range(30):
            response = await client.post("/api/offer", json=OFFER, headers=AUTH)
            statuses.append(response.status_code)
            if response.status_code == 429:
                retry_after.append(int(response.headers["retry-after"]))
        # Another device is not throttled by this one's flood.
    async with harness.client(client=("192.0.2.11", 50000)) as other:
        assert (await other.post("/api/offer", json=OFFER, headers=AUTH)).status_code == 200
    assert statuses[:10] == [200] * 10
    assert statuses.count(429) >= 15, statuses
    assert retry_after and all(1 <= r <= 10 for r in retry_after)
    # A refused offer never reached pipecat's handler.
    assert harness.spy.offers == statuses.count(200) + 1


@pytest.mark.asyncio
async def test_start_is_rate_limited_too(harness: Harness, client: httpx.AsyncClient) -> None:
    statuses = [(await client.post("/start", headers=AUTH)).status_code for _ in range(15)]
    assert statuses[:10] == [200] * 10 and 429 in statuses


@pytest.mark.asyncio
async def test_oversized_body_is_413_before_parsing(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    huge = {"sdp": "a=x\r\n" * 400_000, "type": "offer"}  # ~2 MB
    response = await client.post("/api/offer", json=huge, headers=AUTH)
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 1024

    # Without Content-Length (chunked), the cap applies while reading.
    streamed = await client.post(
        "/api/offer", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert harness.spy.offers == 0
    assert (await client.get("/health")).status_code == 200


@pytest.mark.asyncio
async def test_slow_body_times_out_with_408() -> None:
    harness = Harness(lan_server(body_timeout_secs=0.2))
    sent: list[MutableMapping[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/api/offer",
        "raw_path": b"/api/offer",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"192.0.2.2:8430"),
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"content-type", b"application/json"),
        ],
        "client": LAN_CLIENT,
        "server": ("192.0.2.2", 8430),
    }

    async def one_byte_a_second() -> dict[str, Any]:
        await asyncio.sleep(1.0)
        return {"type": "http.request", "body": b"{", "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(harness.app(scope, one_byte_a_second, send), 5.0)
    assert sent[0]["status"] == 408
    assert harness.spy.offers == 0


@pytest.mark.asyncio
async def test_concurrent_offers_over_max_sessions_get_503_and_allocate_nothing() -> None:
    hold = asyncio.Event()
    harness = Harness(lan_server(max_sessions=1), hold=hold)
    async with harness.client() as client:
        first = asyncio.ensure_future(client.post("/api/offer", json=OFFER, headers=AUTH))
        await asyncio.wait_for(harness.spy.entered.wait(), 10.0)  # the first is being answered
        others = await asyncio.wait_for(
            asyncio.gather(
                *(client.post("/api/offer", json=OFFER, headers=AUTH) for _ in range(4))
            ),
            10.0,
        )
        hold.set()
        answered = await asyncio.wait_for(first, 10.0)
    assert answered.status_code == 200
    assert [r.status_code for r in others] == [503] * 4
    for response in others:
        assert "too many sessions" in response.json()["detail"]
        assert int(response.headers["retry-after"]) >= 1
    # Only the admitted offer reached pipecat's handler: no peer connection for the others.
    assert harness.spy.offers == 1


@pytest.mark.asyncio
async def test_offer_while_models_load_is_503_with_retry_after(harness: Harness) -> None:
    harness.runtime.ready = False
    async with harness.client() as client:
        response = await client.post("/api/offer", json=OFFER, headers=AUTH)
    assert response.status_code == 503
    assert "retry-after" in response.headers
    assert harness.spy.offers == 0


@pytest.mark.asyncio
async def test_malformed_offer_json_is_400(harness: Harness, client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/offer", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert harness.spy.offers == 0


# --- /pair, /ca.crt ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_pair_page_is_for_loopback_clients_only() -> None:
    harness = Harness(lan_server(public_urls=("https://192.0.2.2:8430/",)))
    async with harness.client("https://127.0.0.1:8430", LOOPBACK_CLIENT) as local:
        page = await local.get("/pair")
    assert page.status_code == 200
    assert "<svg" in page.text and f"https://192.0.2.2:8430/?token={TOKEN}" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    async with harness.client() as lan:
        assert (await lan.get("/pair")).status_code == 403
    # This machine's browser, but on a page whose DNS name was rebound to 127.0.0.1.
    async with harness.client("https://rebound.example:8430", LOOPBACK_CLIENT) as rebound:
        assert (await rebound.get("/pair")).status_code == 403


@pytest.mark.asyncio
async def test_ca_certificate_download_is_the_public_part_only(tmp_path: Path) -> None:
    names = LocalNames(hostname="box", lan_addresses=())
    report = ensure_certificates(tmp_path, names)
    # Even a CA file with its key pasted after it serves only the certificate.
    combined = tmp_path / "combined.pem"
    combined.write_bytes(report.paths.ca_cert.read_bytes() + report.paths.ca_key.read_bytes())
    harness = Harness(lan_server(tls_ca_certfile=combined))
    async with harness.client() as client:
        response = await client.get("/ca.crt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-x509-ca-cert"
    assert b"PRIVATE KEY" not in response.content
    cert = x509.load_pem_x509_certificate(response.content)
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca
    async with Harness(lan_server()).client() as without_ca:
        assert (await without_ca.get("/ca.crt")).status_code == 404


# --- logs --------------------------------------------------------------------------------------


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Everything loguru and the standard logging module emit, at DEBUG."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG")
    caplog.set_level(logging.DEBUG)
    try:
        yield lines
    finally:
        logger.remove(sink)
        lines.extend(record.getMessage() for record in caplog.records)


@pytest.mark.asyncio
async def test_the_token_never_reaches_the_logs(captured_logs: list[str]) -> None:
    harness = Harness(lan_server(public_urls=("https://192.0.2.2:8430/",)))
    async with harness.client() as client:
        await client.get(f"/?token={TOKEN}")
        await client.post(f"/api/offer?token={TOKEN}", json=OFFER)
        await client.post("/api/offer", json=OFFER, headers=AUTH)
        await client.post("/api/offer", json=OFFER, headers={"X-Jetvoice-Token": TOKEN})
        await client.post("/api/offer", json=OFFER, headers={"X-Jetvoice-Token": TOKEN + "x"})
        await client.post(
            "/api/offer", json=OFFER, headers={**AUTH, "Origin": f"https://{TOKEN}.example"}
        )
        await client.post("/api/offer", content=b"{", headers=AUTH)
        for _ in range(12):
            await client.post("/api/offer", json=OFFER, headers=AUTH)
    async with harness.client("https://127.0.0.1:8430", LOOPBACK_CLIENT) as local:
        await local.get("/pair")
    text = "\n".join(captured_logs)
    assert "refused" in text  # the refusals were logged ...
    assert TOKEN not in text  # ... without the token
    assert TOKEN not in repr(harness.runtime.config)


class _AiortcRefuses(SpyHandler):
    """Answers every offer the way aiortc refuses an SDP it cannot parse."""

    async def handle_web_request(
        self, request: Any, webrtc_connection_callback: Callable[[Any], Awaitable[None]]
    ) -> dict[str, str]:
        self.offers += 1
        SessionDescription.parse("v=0\r\na=fingerprint:\r\n")
        raise AssertionError("unreachable: aiortc refuses that SDP")


class _Broken(SpyHandler):
    """Fails every offer the way a bug in the server (or in pipecat) would."""

    async def handle_web_request(
        self, request: Any, webrtc_connection_callback: Callable[[Any], Awaitable[None]]
    ) -> dict[str, str]:
        self.offers += 1
        raise RuntimeError("a bug, not the offer's fault")


@pytest.mark.asyncio
async def test_a_refused_or_failed_offer_frees_its_place() -> None:
    """With max_sessions=1, offers that produced no session never block the next one."""
    for handler, status in ((_AiortcRefuses(), 400), (_Broken(), 500)):
        harness = Harness(lan_server(max_sessions=1))
        harness.app = create_app(harness.runtime, sessions=SessionManager(harness.runtime, handler))
        async with harness.client() as client:
            for _ in range(3):
                response = await client.post("/api/offer", json=OFFER, headers=AUTH)
                assert response.status_code == status, response.text
        assert handler.offers == 3


@pytest.mark.asyncio
async def test_a_server_fault_answering_an_offer_is_a_logged_500_not_an_invalid_sdp(
    captured_logs: list[str],
) -> None:
    harness = Harness(lan_server())
    harness.app = create_app(harness.runtime, sessions=SessionManager(harness.runtime, _Broken()))
    async with harness.client() as client:
        response = await client.post("/api/offer", json=OFFER, headers=AUTH)
    assert response.status_code == 500, response.text
    assert "invalid SDP" not in response.text
    failure = [line for line in captured_logs if "answering the offer failed" in line]
    assert failure and "ERROR" in failure[0], captured_logs
    assert "a bug, not the offer's fault" in "\n".join(captured_logs)  # the traceback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3:8430", True),
        ("::1", True),
        ("[::1]", True),
        ("[::1]:8430", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("localhost:8430", True),
        ("app.localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.2", False),
        ("[2001:db8::1]:8430", False),
        ("localhost.example", False),
        ("", False),
        (None, False),
    ],
)
def test_one_loopback_check_for_bind_addresses_and_host_headers(
    host: str | None, loopback: bool
) -> None:
    """The server's token rule, its ICE policy, the bind check and the banner all use it."""
    assert is_loopback_host(host) is loopback
