"""ICE policies: the loopback bind's talks to this machine only, the callers' to loopback only.

A browser's mDNS names are never resolved; candidates and datagrams of another machine are
ignored, and nothing is sent to one. This machine's own interface address is what a browser on
this machine calls from, so the loopback bind accepts it.
"""

from __future__ import annotations

from typing import Any

import aioice.ice
import pytest
from aioice import stun
from aioice.candidate import Candidate

import pipeline.webrtc.own_addresses
from pipeline.webrtc.ice_policy import is_loopback_ip, loopback_only_ice, own_machine_ice


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


@pytest.fixture
def no_mdns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if an mDNS name is resolved (a multicast query onto the LAN)."""

    async def resolve(*_args: object) -> None:
        raise AssertionError("an mDNS name was resolved (multicast)")

    monkeypatch.setattr(aioice.ice, "get_or_create_mdns_protocol", resolve)


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_mdns")
async def test_remote_candidates_off_loopback_are_ignored_unresolved() -> None:
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


# A machine with one LAN address; the documentation ranges stand in for other machines.
OWN_LAN = "192.0.2.77"
FOREIGN = "198.51.100.9"


@pytest.fixture
def one_lan_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has 127.0.0.1, ::1 and OWN_LAN, as the kernel's interface table says."""
    addresses = frozenset(
        pipeline.webrtc.own_addresses.parse_ip(a) for a in ("127.0.0.1", "::1", OWN_LAN)
    )
    monkeypatch.setattr(pipeline.webrtc.own_addresses, "interface_addresses", lambda: addresses)
    monkeypatch.setattr(
        pipeline.webrtc.own_addresses, "_table", pipeline.webrtc.own_addresses._InterfaceTable()
    )


@pytest.mark.asyncio
@pytest.mark.usefixtures("one_lan_address", "no_mdns")
async def test_own_machine_keeps_own_addresses_and_drops_names_and_strangers() -> None:
    connection = aioice.ice.Connection(ice_controlling=False)
    with own_machine_ice():
        for host in (FOREIGN, "fd00::5", "4a1b2c3d-0000-1111-2222-333344445555.local"):
            await connection.add_remote_candidate(_candidate(host))
        for host in ("127.0.0.1", OWN_LAN):
            await connection.add_remote_candidate(_candidate(host))
    assert [c.host for c in connection.remote_candidates] == ["127.0.0.1", OWN_LAN]
    await connection.close()


@pytest.mark.asyncio
@pytest.mark.usefixtures("one_lan_address")
async def test_own_machine_answers_only_this_machine() -> None:
    receiver = Receiver()
    protocol = aioice.ice.StunProtocol(receiver)  # type: ignore[arg-type]
    transport = RecordingTransport()
    protocol.transport = transport  # type: ignore[assignment]
    protocol.local_candidate = _candidate(OWN_LAN)
    message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with own_machine_ice():
        protocol.send_stun(message, (FOREIGN, 40000))
        await protocol.send_data(b"media", (FOREIGN, 40000))
        protocol.send_stun(message, (OWN_LAN, 40000))
        protocol.send_stun(message, ("127.0.0.1", 40000))
        protocol.datagram_received(b"from a stranger", (FOREIGN, 40000))
        protocol.datagram_received(b"from a stranger", ("::ffff:" + FOREIGN, 40000, 0, 0))
        protocol.datagram_received(b"from this machine", (OWN_LAN, 40000))
        protocol.datagram_received(b"from this machine too", ("::ffff:" + OWN_LAN, 40000, 0, 0))
    assert transport.sent == [(OWN_LAN, 40000), ("127.0.0.1", 40000)]
    assert receiver.data == [b"from this machine", b"from this machine too"]


@pytest.mark.usefixtures("one_lan_address")
def test_own_machine_gathers_on_loopback_and_the_interfaces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pipeline.webrtc.ice_policy as policy

    monkeypatch.setattr(policy, "_ORIGINAL_GET_HOST_ADDRESSES", lambda v4, v6: [OWN_LAN])
    before = aioice.ice.get_host_addresses
    with own_machine_ice():
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", OWN_LAN]
    assert aioice.ice.get_host_addresses is before


def test_a_new_address_is_seen_without_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {pipeline.webrtc.own_addresses.parse_ip("127.0.0.1")}
    monkeypatch.setattr(
        pipeline.webrtc.own_addresses, "interface_addresses", lambda: frozenset(table)
    )
    monkeypatch.setattr(
        pipeline.webrtc.own_addresses, "_table", pipeline.webrtc.own_addresses._InterfaceTable()
    )
    assert not pipeline.webrtc.own_addresses.is_own_address(OWN_LAN)
    table.add(pipeline.webrtc.own_addresses.parse_ip(OWN_LAN))
    pipeline.webrtc.own_addresses.forget_addresses()  # as if a second had passed
    assert pipeline.webrtc.own_addresses.is_own_address(OWN_LAN)
    assert not pipeline.webrtc.own_addresses.is_own_address("a-name.local")


def test_blocks_may_end_in_any_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """An in-process server's lifespan (own machine) can outlast the caller's block around it
    (loopback only): the server's policy stays in force, and aioice is whole again after both.
    Restoring on exit in the order of entry left the caller's policy installed for good."""
    import pipeline.webrtc.ice_policy as policy

    monkeypatch.setattr(policy, "_ORIGINAL_GET_HOST_ADDRESSES", lambda v4, v6: [OWN_LAN])
    patched = (
        aioice.ice.get_host_addresses,
        aioice.ice.Connection.add_remote_candidate,
        aioice.ice.StunProtocol.datagram_received,
        aioice.ice.StunProtocol.send_stun,
        aioice.ice.StunProtocol.send_data,
    )
    caller, server = loopback_only_ice(), own_machine_ice()
    caller.__enter__()
    server.__enter__()
    caller.__exit__(None, None, None)
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1", OWN_LAN]
    server.__exit__(None, None, None)
    assert (
        aioice.ice.get_host_addresses,
        aioice.ice.Connection.add_remote_candidate,
        aioice.ice.StunProtocol.datagram_received,
        aioice.ice.StunProtocol.send_stun,
        aioice.ice.StunProtocol.send_data,
    ) == patched
