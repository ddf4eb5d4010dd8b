"""Loopback-only ICE: a browser's LAN and mDNS candidates are never contacted or resolved."""

from __future__ import annotations

from typing import Any

import aioice.ice
import pytest
from aioice import stun
from aioice.candidate import Candidate

from pipeline.ice_policy import is_loopback_ip, loopback_only_ice


def _candidate(host: str) -> Candidate:
    return Candidate(
        foundation="1",
        component=1,
        transport="udp",
        priority=1,
        host=host,
        port=40000,
        type="host",
    )


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def sendto(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.sent.append(addr)


class Receiver:
    def __init__(self) -> None:
        self.data: list[bytes] = []

    def data_received(self, data: bytes, component: int) -> None:
        self.data.append(data)


@pytest.mark.asyncio
async def test_remote_candidates_off_loopback_are_ignored_unresolved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_mdns(*_args: object) -> None:
        raise AssertionError("an mDNS name was resolved (multicast)")

    monkeypatch.setattr(aioice.ice, "get_or_create_mdns_protocol", no_mdns)
    connection = aioice.ice.Connection(ice_controlling=False)
    with loopback_only_ice():
        for host in ("192.168.1.5", "fd00::5", "4a1b2c3d-0000-1111-2222-333344445555.local"):
            await connection.add_remote_candidate(_candidate(host))
        await connection.add_remote_candidate(_candidate("127.0.0.1"))
    assert [c.host for c in connection.remote_candidates] == ["127.0.0.1"]
    await connection.close()


@pytest.mark.asyncio
async def test_nothing_is_sent_to_or_accepted_from_off_loopback() -> None:
    receiver = Receiver()
    protocol = aioice.ice.StunProtocol(receiver)  # type: ignore[arg-type]
    transport = RecordingTransport()
    protocol.transport = transport  # type: ignore[assignment]
    protocol.local_candidate = _candidate("127.0.0.1")
    message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with loopback_only_ice():
        protocol.send_stun(message, ("192.168.1.5", 40000))
        await protocol.send_data(b"media", ("192.168.1.5", 40000))
        protocol.send_stun(message, ("127.0.0.1", 40000))
        protocol.datagram_received(b"not stun", ("192.168.1.5", 40000))
        protocol.datagram_received(b"not stun", ("127.0.0.1", 40000))
    assert transport.sent == [("127.0.0.1", 40000)]
    assert receiver.data == [b"not stun"]


def test_patches_are_undone() -> None:
    before = (aioice.ice.get_host_addresses, aioice.ice.StunProtocol.send_stun)
    with loopback_only_ice():
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1"]
        assert aioice.ice.StunProtocol.send_stun is not before[1]
    assert (aioice.ice.get_host_addresses, aioice.ice.StunProtocol.send_stun) == before


def test_is_loopback_ip() -> None:
    assert is_loopback_ip("127.0.0.1") and is_loopback_ip("::1") and is_loopback_ip("127.1.2.3")
    assert not is_loopback_ip("localhost")
    assert not is_loopback_ip("x.local") and not is_loopback_ip("192.168.1.2")
