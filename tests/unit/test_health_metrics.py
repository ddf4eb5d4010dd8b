"""``/health`` and ``/metrics``: what they report, in what format, and to whom.

In-process (httpx's ASGI transport) with a runtime whose models are never loaded and an idle
request handler. The details of both are for this machine (loopback client, loopback Host) and
for paired devices; another LAN device gets only the status from /health and 401 from /metrics.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.config import ServerConfig
from pipeline.ops.metrics import Metrics
from pipeline.server.app import SessionManager, create_app
from tests.support.runtime import unloaded_runtime
from tests.support.sdp import chromium_offer

TOKEN = "t0ken-for-tests-0123456789abcdefghijklmnop"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class _Handler:
    """Answers every offer, holds no peer."""

    peer_count = 0

    async def handle_web_request(self, request: Any, callback: Any) -> dict[str, str]:
        return {"sdp": "v=0\r\n", "type": "answer", "pc_id": "pc-1"}

    async def handle_patch_request(self, request: Any) -> None:
        return None

    async def close(self) -> None:
        return None


def _app(**server: Any) -> Any:
    values: dict[str, Any] = {
        "host": "0.0.0.0",
        "pairing_token": TOKEN,
        "tls_certfile": Path("/unused/server.crt"),
        "tls_keyfile": Path("/unused/server.key"),
        "max_sessions": 1,
    }
    values.update(server)
    runtime = unloaded_runtime(ServerConfig(**values))
    return create_app(runtime, sessions=SessionManager(runtime, _Handler()))


# (client address, the URL it addressed the server by)
LOCAL = (("127.0.0.1", 50000), "https://127.0.0.1:8430")
LAN = (("192.0.2.10", 50000), "https://192.0.2.2:8430")


def _client(app: Any, where: tuple[tuple[str, int], str]) -> httpx.AsyncClient:
    client, base_url = where
    transport = httpx.ASGITransport(app=app, client=client)
    return httpx.AsyncClient(transport=transport, base_url=base_url, timeout=10.0)


@pytest.mark.asyncio
async def test_health_reports_models_llm_sessions_and_tasks_to_this_machine() -> None:
    async with _client(_app(), LOCAL) as client:
        health = (await client.get("/health")).json()
    assert health["status"] == "ready"
    assert health["models"]["whisper"]["loaded"] is False  # never loaded in this test
    assert set(health["models"]) == {"whisper", "kokoro"}
    assert set(health["models"]["kokoro"]) == {"loaded", "loads"}
    # Never started in this test, so not serving yet.
    assert health["llm"] == {
        "server": "external",
        "running": True,
        "serving": False,
        "restarts": 0,
    }
    assert health["sessions"] == {"active": 0, "max": 1, "peers": 0, "guests": 0}
    assert health["tasks"] >= 1


@pytest.mark.asyncio
async def test_lan_devices_get_status_only_unless_paired() -> None:
    app = _app()
    async with _client(app, LAN) as client:
        anonymous = await client.get("/health")
        assert anonymous.status_code == 200
        assert anonymous.json() == {"status": "ready"}
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer nope"})).is_error
        paired = await client.get("/health", headers=AUTH)
        assert "models" in paired.json()
        assert (await client.get("/metrics", headers=AUTH)).status_code == 200


def _samples(text: str) -> dict[str, float]:
    """name{labels sorted} -> value, checking every line is a comment or a sample."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (-?[0-9.e+]+|\+Inf|NaN)", line)
        assert match, f"not a Prometheus sample line: {line!r}"
        name, labels, value = match.groups()
        # Label order carries no meaning: key them sorted, as the assertions below spell them.
        pairs = sorted(re.findall(r'[a-z_]+="(?:[^"\\]|\\.)*"', labels or ""))
        samples[name + (f"{{{','.join(pairs)}}}" if pairs else "")] = float(value)
    return samples


@pytest.mark.asyncio
async def test_metrics_count_refusals_by_reason_in_prometheus_text() -> None:
    app = _app(offer_burst=3)
    offer = {"sdp": chromium_offer(), "type": "offer"}
    async with _client(app, LAN) as client:
        statuses = [
            (await client.post("/api/offer", json=body, headers=AUTH)).status_code
            for body in [{"sdp": "v=0", "type": "offer"}, offer, offer, offer]
        ]
        assert (await client.post("/api/offer", json=offer)).status_code == 401
        response = await client.get("/metrics", headers=AUTH)
    # An invalid SDP, then answers until the burst of three is spent.
    assert statuses[:2] == [400, 200], statuses
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = _samples(response.text)
    assert samples['jetvoice_sessions_refused_total{reason="invalid_offer"}'] == 1
    assert samples['jetvoice_sessions_refused_total{reason="rate_limited"}'] >= 1
    assert samples['jetvoice_sessions_refused_total{reason="unauthorized"}'] == 1
    assert samples["jetvoice_ready"] == 1
    assert samples["jetvoice_asyncio_tasks"] >= 1
    assert samples["jetvoice_llm_server_restarts_total"] == 0
    assert samples['jetvoice_model_loaded{model="whisper"}'] == 0
    for family in ("jetvoice_sessions_active", "jetvoice_turns_total", "jetvoice_errors_total"):
        assert f"# TYPE {family} " in response.text


def test_histograms_counters_and_process_metrics_render_in_the_exposition_format() -> None:
    metrics = Metrics()
    metrics.turn({"stt": 0.12, "llm": 0.9}, fallback=False)
    metrics.error("llm")
    metrics.session_refused('odd "reason"')
    text = metrics.render().decode()
    samples = _samples(text)
    assert samples['jetvoice_stage_seconds_bucket{le="0.2",stage="stt"}'] == 1
    assert samples['jetvoice_stage_seconds_bucket{le="+Inf",stage="llm"}'] == 1
    assert samples['jetvoice_errors_total{stage="llm"}'] == 1
    assert samples["jetvoice_turns_total"] == 1
    assert samples['jetvoice_sessions_refused_total{reason="odd \\"reason\\""}'] == 1
    assert text.count("# TYPE jetvoice_stage_seconds histogram") == 1
    # The process's own, from prometheus_client's process collector (Linux /proc).
    assert samples["process_resident_memory_bytes"] > 0
    assert samples["process_open_fds"] > 0


def test_each_runtime_counts_in_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.session_started()
    assert _samples(first.render().decode())["jetvoice_sessions_active"] == 1
    assert _samples(second.render().decode())["jetvoice_sessions_active"] == 0
    second.session_ended()
    assert _samples(second.render().decode())["jetvoice_sessions_active"] == 0
