"""RELIABILITY row 1: a malformed or hostile SDP offer gets 400 with a short message, never 500,
and leaves no peer connection, session or task behind.

Hypothesis throws random text and line-level mutations of real offers (Chromium's, aiortc's) at
``POST /api/offer`` of the real app (httpx's ASGI transport, no HTTP socket) whose session
manager uses pipecat's real request handler: an offer that passes validation gets a real aiortc
peer, gathering on 127.0.0.1. Sessions have no pipeline (``idle_session``): what is under test is
what happens before and around one. Each example runs in its own event loop and must end with
no task alive, no peer held by the handler and, for a refused offer, no ``RTCPeerConnection``
ever created.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import httpx
import pipecat.transports.smallwebrtc.connection as pipecat_connection
import pytest
from aiortc import RTCPeerConnection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import ServerConfig
from pipeline.server.app import create_app
from pipeline.sessions.manager import PeerRequestHandler, SessionManager
from pipeline.webrtc.ice_policy import loopback_only_ice
from tests.support.runtime import idle_session, unloaded_runtime
from tests.support.sdp import aiortc_offer, chromium_offer

SEEDS = {"chromium": chromium_offer(), "aiortc": aiortc_offer()}
MAX_DETAIL_CHARS = 200


class _TrackedPeerConnection(RTCPeerConnection):
    """aiortc's peer connection, remembered weakly so a test can count and inspect them."""

    made: ClassVar[weakref.WeakSet[RTCPeerConnection]] = weakref.WeakSet()
    count: ClassVar[int] = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type(self).count += 1
        type(self).made.add(self)


@pytest.fixture(scope="module", autouse=True)
def tracked_peer_connections() -> Iterator[None]:
    """pipecat's connection module builds its peers from the tracked class."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipecat_connection, "RTCPeerConnection", _TrackedPeerConnection)
        with loopback_only_ice():
            yield


async def _offer(sdp: str) -> tuple[int, str]:
    """POST the offer to a fresh app; check what is left; return status and detail."""
    runtime = unloaded_runtime(ServerConfig(max_sessions=1))
    handler = PeerRequestHandler(ice_servers=[])
    sessions = SessionManager(runtime, handler, start_session=idle_session)
    app = create_app(runtime, sessions=sessions)
    made_before = _TrackedPeerConnection.count
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8430") as client:
        response = await client.post("/api/offer", json={"sdp": sdp, "type": "offer"})
    status = response.status_code
    detail = response.json().get("detail", "") if status != 200 else ""
    if status == 400:
        assert sessions.active == 0
        assert handler.peer_count == 0
        assert _TrackedPeerConnection.count == made_before, "a refused offer made a peer"
    await sessions.close()
    assert sessions.active == 0 and handler.peer_count == 0
    for pc in list(_TrackedPeerConnection.made):
        assert pc.connectionState == "closed", "a peer connection was left open"
    # aiortc and pipecat finish their own tasks shortly after a close.
    current = asyncio.current_task()
    for _ in range(100):
        leaked = [t for t in asyncio.all_tasks() if t is not current]
        if not leaked:
            break
        await asyncio.sleep(0.01)
    assert not leaked, f"tasks left behind: {leaked}"
    return status, detail


async def _bounded_offer(sdp: str) -> tuple[int, str]:
    async with asyncio.timeout(30):
        return await _offer(sdp)


def _check(sdp: str) -> None:
    status, detail = asyncio.run(_bounded_offer(sdp))
    assert status in (200, 400), (status, detail, sdp[:300])
    if status == 400:
        assert detail and len(detail) <= MAX_DETAIL_CHARS, detail


def _lines(sdp: str) -> list[str]:
    return sdp.split("\r\n")[:-1]


def _join(lines: list[str]) -> str:
    return "".join(f"{line}\r\n" for line in lines)


# --- line-level mutations --------------------------------------------------------------------

Mutation = Callable[[list[str], st.DataObject], list[str]]


def _index(lines: list[str], data: st.DataObject) -> int:
    return data.draw(st.integers(0, max(0, len(lines) - 1)), label="line")


def _drop(lines: list[str], data: st.DataObject) -> list[str]:
    i = _index(lines, data)
    return lines[:i] + lines[i + 1 :]


def _duplicate(lines: list[str], data: st.DataObject) -> list[str]:
    i = _index(lines, data)
    return lines[: i + 1] + lines[i:]


def _swap(lines: list[str], data: st.DataObject) -> list[str]:
    i, j = _index(lines, data), _index(lines, data)
    out = list(lines)
    out[i], out[j] = out[j], out[i]
    return out


def _replace(lines: list[str], data: st.DataObject) -> list[str]:
    i = _index(lines, data)
    text = data.draw(st.text(max_size=80), label="replacement")
    return [*lines[:i], text, *lines[i + 1 :]]


def _insert(lines: list[str], data: st.DataObject) -> list[str]:
    i = _index(lines, data)
    kind = data.draw(st.sampled_from("vosctmab"), label="kind")
    value = data.draw(st.text(max_size=60), label="value")
    return [*lines[:i], f"{kind}={value}", *lines[i:]]


def _corrupt(lines: list[str], data: st.DataObject) -> list[str]:
    """Change one character, or cut the line short."""
    i = _index(lines, data)
    line = lines[i]
    if not line:
        return lines
    at = data.draw(st.integers(0, len(line) - 1), label="column")
    if data.draw(st.booleans(), label="truncate"):
        new = line[:at]
    else:
        new = line[:at] + data.draw(st.characters(), label="char") + line[at + 1 :]
    return [*lines[:i], new, *lines[i + 1 :]]


def _without(prefix: str) -> Mutation:
    def mutate(lines: list[str], data: st.DataObject) -> list[str]:
        return [line for line in lines if not line.startswith(prefix)]

    return mutate


def _set_attribute(prefix: str, values: st.SearchStrategy[str]) -> Mutation:
    def mutate(lines: list[str], data: st.DataObject) -> list[str]:
        value = data.draw(values, label=prefix)
        return [f"{prefix}{value}" if line.startswith(prefix) else line for line in lines]

    return mutate


def _bad_port(lines: list[str], data: st.DataObject) -> list[str]:
    port = data.draw(
        st.one_of(st.integers(65536, 10**12).map(str), st.sampled_from(["-1", "x", "", "9/2"])),
        label="port",
    )
    out = []
    for line in lines:
        parts = line.split(" ")
        if line.startswith("m=") and len(parts) > 1:
            parts[1] = port
        out.append(" ".join(parts))
    return out


def _many_m_lines(lines: list[str], data: st.DataObject) -> list[str]:
    count = data.draw(st.integers(9, 500), label="m-lines")
    audio = "m=audio 9 UDP/TLS/RTP/SAVPF 111"
    return [*lines, *[audio] * count]


def _nul(lines: list[str], data: st.DataObject) -> list[str]:
    i = _index(lines, data)
    line = lines[i]
    at = data.draw(st.integers(0, len(line)), label="column")
    return [*lines[:i], line[:at] + "\x00" + line[at:], *lines[i + 1 :]]


MUTATIONS: list[Mutation] = [
    _drop,
    _duplicate,
    _swap,
    _replace,
    _insert,
    _corrupt,
    _nul,
    _bad_port,
    _many_m_lines,
    _without("a=ice-ufrag"),
    _without("a=ice-pwd"),
    _without("a=fingerprint"),
    _without("a=setup"),
    _without("a=rtcp-mux"),
    _without("a=mid"),
    _without("m=audio"),
    _set_attribute("a=setup:", st.sampled_from(["holdconn", "", "ACTPASS", "active passive"])),
    _set_attribute(
        "a=fingerprint:",
        st.sampled_from(["sha-256", "md5 00:11", "sha-256 zz", "sha-1 " + ":".join(["AB"] * 20)]),
    ),
    _set_attribute("a=ice-ufrag:", st.text(max_size=8)),
    _set_attribute("a=candidate:", st.text(max_size=40)),
    _set_attribute("a=group:BUNDLE ", st.text(max_size=10)),
    _set_attribute("a=sctp-port:", st.text(max_size=6)),
    _set_attribute("c=", st.text(max_size=20)),
]


@st.composite
def mutated_offers(draw: st.DrawFn) -> str:
    """A real offer after one to four line-level mutations, with CRLF or LF line endings."""
    data = draw(st.data())
    lines = _lines(draw(st.sampled_from(sorted(SEEDS)).map(SEEDS.__getitem__)))
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4)):
        lines = mutation(lines, data)
    text = _join(lines)
    return text.replace("\r\n", "\n") if draw(st.booleans()) else text


def _settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.mark.timeout(300)
@_settings(300)
@given(mutated_offers())
def test_mutated_browser_offers_get_400_or_an_answer_never_500(sdp: str) -> None:
    _check(sdp)


@pytest.mark.timeout(300)
@_settings(200)
@given(st.one_of(st.text(max_size=2000), st.text(max_size=200).map(lambda t: f"v=0\r\n{t}")))
def test_random_text_gets_400_never_500(sdp: str) -> None:
    _check(sdp)


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_the_real_offers_are_answered_and_closed_cleanly(seed: str) -> None:
    status, detail = asyncio.run(_offer(SEEDS[seed]))
    assert status == 200, detail


@pytest.mark.parametrize(
    ("sdp", "message"),
    [
        ("v=0", "the offer has no media section (m=)"),
        ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", "no media section"),
        (chromium_offer().replace("a=ice-ufrag", "a=x-ufrag"), "has no a=ice-ufrag"),
        (chromium_offer().replace("m=audio 9", "m=audio 99999"), "bad port '99999'"),
        (chromium_offer() + "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n" * 500, "too many"),
        (chromium_offer().replace("a=setup:actpass", "a=setup:holdconn"), "a=setup must be"),
        (chromium_offer().replace("s=-", "s=\x00"), "line 3 contains a NUL byte"),
    ],
    ids=["v0-only", "no-media", "no-ufrag", "bad-port", "500-m-lines", "bad-setup", "nul"],
)
def test_named_hostile_offers_get_an_exact_400(sdp: str, message: str) -> None:
    status, detail = asyncio.run(_offer(sdp))
    assert status == 400
    assert message in detail, detail
