"""Joining a conversation over HTTP: who may, what a refusal says, and that it allocates nothing.

The app runs in-process (httpx's ASGI transport, no sockets) with a runtime that loads no model.
The request handler makes real but never negotiated peer connections (no ICE, no sockets), so
the session manager and the party see real connection objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection

from pipeline.config import ServerConfig
from pipeline.runtime import AgentRuntime
from pipeline.server.app import create_app
from pipeline.sessions.manager import SessionManager
from pipeline.sessions.party import Party, PartyError
from tests.support.runtime import idle_session, unloaded_runtime
from tests.support.sdp import chromium_offer

OFFER = {"sdp": chromium_offer(), "type": "offer"}
TOKEN = "t0ken-for-tests-0123456789abcdefghijklmnop"


class ConnectingHandler:
    """Stands in for pipecat's request handler: one unnegotiated connection per new offer."""

    def __init__(self) -> None:
        self.connections: list[SmallWebRTCConnection] = []

    @property
    def peer_count(self) -> int:
        return sum(c.pc.connectionState != "closed" for c in self.connections)

    async def handle_web_request(
        self, request: Any, callback: Callable[[SmallWebRTCConnection], Awaitable[None]]
    ) -> dict[str, str]:
        connection = SmallWebRTCConnection(ice_servers=[])
        self.connections.append(connection)
        await callback(connection)
        return {"sdp": "v=0\r\n", "type": "answer", "pc_id": connection.pc_id}

    async def handle_patch_request(self, request: Any) -> None:
        return None

    async def close(self) -> None:
        await asyncio.gather(*(c.disconnect() for c in self.connections))


def joinable_session(
    connection: SmallWebRTCConnection, runtime: AgentRuntime, session_id: str, party: Party
) -> Coroutine[Any, Any, None]:
    """An idle session that takes guests (no pipeline: nothing is mixed or heard)."""

    async def nothing() -> None:
        return None

    party.open(out_sample_rate=24000, on_empty=nothing)
    return idle_session(connection, runtime, session_id, party)


class Harness:
    """The app over a connecting handler, with the session starter of the test's choice."""

    def __init__(self, server: ServerConfig, starter: Any = joinable_session) -> None:
        self.runtime = unloaded_runtime(server)
        self.handler = ConnectingHandler()
        self.sessions = SessionManager(self.runtime, self.handler, start_session=starter)
        self.app = create_app(self.runtime, sessions=self.sessions)

    def client(self, client: tuple[str, int] = ("127.0.0.1", 50000)) -> httpx.AsyncClient:
        base = "http://127.0.0.1:8430"
        transport = httpx.ASGITransport(app=self.app, client=client)
        return httpx.AsyncClient(transport=transport, base_url=base, timeout=10.0)

    async def host(self, http: httpx.AsyncClient) -> str:
        response = await http.post("/api/offer", json=OFFER)
        assert response.status_code == 200, response.text
        sid: str = response.json()["session_id"]
        return sid

    def refused(self, reason: str) -> float:
        sample = self.runtime.metrics.registry.get_sample_value(
            "jetvoice_sessions_refused_total", {"reason": reason}
        )
        return sample or 0.0


@pytest_asyncio.fixture
async def harness() -> AsyncIterator[Harness]:
    made = Harness(ServerConfig(max_sessions=1, max_guests=1))
    try:
        yield made
    finally:
        await made.sessions.close()


@pytest.mark.asyncio
async def test_a_join_is_answered_in_the_hosts_session_without_a_pipeline_of_its_own(
    harness: Harness,
) -> None:
    async with harness.client() as http:
        sid = await harness.host(http)
        joined = await http.post("/api/offer", json={**OFFER, "join": sid})
        assert joined.status_code == 200, joined.text
        assert joined.json()["session_id"] == sid
        # max_sessions=1 did not refuse it: a joined peer adds no pipeline.
        assert (harness.sessions.active, harness.sessions.guests) == (1, 1)
        health = (await http.get("/health")).json()["sessions"]
        assert health == {"active": 1, "max": 1, "peers": 2, "guests": 1}
        # A new conversation is still refused: the one session there is, is taken.
        busy = await http.post("/api/offer", json=OFFER)
        assert busy.status_code == 503


@pytest.mark.asyncio
async def test_joining_an_unknown_conversation_is_404_and_allocates_nothing(
    harness: Harness,
) -> None:
    async with harness.client() as http:
        response = await http.post("/api/offer", json={**OFFER, "join": "0123456789ab"})
    assert response.status_code == 404
    assert "no such conversation" in response.json()["detail"]
    assert harness.handler.connections == [] and harness.sessions.active == 0
    assert harness.refused("unknown_session") == 1


@pytest.mark.asyncio
async def test_a_full_conversation_refuses_the_next_join_and_allocates_nothing(
    harness: Harness,
) -> None:
    async with harness.client() as http:
        sid = await harness.host(http)
        assert (await http.post("/api/offer", json={**OFFER, "join": sid})).status_code == 200
        full = await http.post("/api/offer", json={**OFFER, "join": sid})
    assert full.status_code == 503
    assert "full" in full.json()["detail"] and full.headers["retry-after"]
    assert len(harness.handler.connections) == 2 and harness.sessions.guests == 1
    assert harness.refused("conversation_full") == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"join": ""}, "'join' must be a session id"),
        ({"join": "../etc"}, "'join' must be a session id"),
        ({"join": 12}, "'join' must be a session id"),
        ({"join": "x" * 65}, "'join' must be a session id"),
        ({"pc_id": "pc-1"}, "leave out 'pc_id'"),
    ],
)
async def test_a_malformed_join_is_400(
    harness: Harness, extra: dict[str, Any], message: str
) -> None:
    async with harness.client() as http:
        sid = await harness.host(http)
        body = {**OFFER, "join": sid, **extra}
        response = await http.post("/api/offer", json=body)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert len(harness.handler.connections) == 1


@pytest.mark.asyncio
async def test_a_joined_peer_cannot_reconnect_as_a_new_conversation(harness: Harness) -> None:
    async with harness.client() as http:
        sid = await harness.host(http)
        guest = (await http.post("/api/offer", json={**OFFER, "join": sid})).json()
        again = await http.post("/api/offer", json={**OFFER, "pc_id": guest["pc_id"]})
    assert again.status_code == 409 and "join it again" in again.json()["detail"]


@pytest.mark.asyncio
async def test_a_session_that_takes_no_guests_refuses_joins() -> None:
    harness = Harness(ServerConfig(max_sessions=1), starter=idle_session)
    try:
        async with harness.client() as http:
            sid = await harness.host(http)
            response = await http.post("/api/offer", json={**OFFER, "join": sid})
        assert response.status_code == 409
        assert len(harness.handler.connections) == 1
    finally:
        await harness.sessions.close()


@pytest.mark.asyncio
async def test_a_join_needs_the_pairing_token_like_any_offer() -> None:
    harness = Harness(ServerConfig(pairing_token=TOKEN, require_token=True))
    try:
        async with harness.client() as http:
            offered = await http.post(
                "/api/offer", json=OFFER, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            sid = offered.json()["session_id"]
            response = await http.post("/api/offer", json={**OFFER, "join": sid})
        assert response.status_code == 401
        assert len(harness.handler.connections) == 1 and harness.sessions.guests == 0
    finally:
        await harness.sessions.close()


@pytest.mark.asyncio
async def test_when_the_session_ends_its_guests_are_disconnected(harness: Harness) -> None:
    async with harness.client() as http:
        sid = await harness.host(http)
        await http.post("/api/offer", json={**OFFER, "join": sid})
    host, guest = harness.handler.connections
    await host.disconnect()  # the idle session ends with its host's connection

    async def ended() -> None:
        while True:
            if not harness.sessions.active and guest.pc.connectionState == "closed":
                return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(ended(), 5.0)
    assert harness.sessions.guests == 0


def test_with_max_guests_zero_nobody_can_join() -> None:
    party = Party("s", max_guests=0, peer_timeout_secs=10, connect_timeout_secs=30)

    async def nothing() -> None:
        return None

    party.open(out_sample_rate=24000, on_empty=nothing)
    with pytest.raises(PartyError, match="turned off") as off:
        party.reserve()
    assert off.value.status == 409


def test_a_party_that_never_opened_or_has_ended_takes_nobody() -> None:
    party = Party("s", max_guests=2, peer_timeout_secs=10, connect_timeout_secs=30)
    with pytest.raises(PartyError) as unopened:
        party.reserve()
    assert unopened.value.status == 409

    async def nothing() -> None:
        return None

    party.open(out_sample_rate=24000, on_empty=nothing)
    party.reserve()
    party.reserve()
    with pytest.raises(PartyError) as full:
        party.reserve()
    assert full.value.status == 503
    party.unreserve()
    party.reserve()
    asyncio.run(party.close())
    with pytest.raises(PartyError) as ended:
        party.reserve()
    assert ended.value.status == 404
