"""Which local addresses aiortc offers as ICE host candidates.

aioice gathers a host candidate on every interface address except 127.0.0.1 and ::1, so two
peers on one machine connect over its LAN address, and a machine with only loopback gathers
nothing at all. For a session that must stay on loopback, `loopback_only_ice()` makes aiortc
gather on 127.0.0.1 only, and talk to loopback only: a browser on the same machine still offers
its LAN addresses (and, by default, mDNS names), and aioice would send connectivity checks to
them, or multicast to resolve them. Those remote candidates are dropped unresolved, datagrams
from non-loopback sources are ignored (no reply, no peer-reflexive candidate), and nothing is
ever sent to a non-loopback address. It patches aioice's module and classes, so it applies to
every peer connection in the process (the caller and an in-process server alike) while active.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
from collections.abc import Iterator
from typing import Any

import aioice.ice
from aioice.candidate import Candidate

logger = logging.getLogger(__name__)

LOOPBACK_HOST_ADDRESSES = ("127.0.0.1",)


def _loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return list(LOOPBACK_HOST_ADDRESSES) if use_ipv4 else []


def is_loopback_ip(host: object) -> bool:
    """True for an IP literal in 127.0.0.0/8 or ::1 (names, mDNS included, are not)."""
    return _is_loopback_literal(str(host))


# Asked for every datagram of every call (100-200 a second each way): parsing the address
# each time was a few percent of the event loop's time in an idle call.
@functools.lru_cache(maxsize=256)
def _is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def loopback_only_ice() -> Iterator[None]:
    """Within this block, peer connections gather on, and talk to, 127.0.0.1 only."""
    connection = aioice.ice.Connection
    protocol = aioice.ice.StunProtocol
    originals = (
        aioice.ice.get_host_addresses,
        connection.add_remote_candidate,
        protocol.datagram_received,
        protocol.send_stun,
        protocol.send_data,
    )
    add_remote, received, send_stun, send_data = originals[1:]

    async def add_remote_candidate(self: Any, candidate: Candidate | None) -> None:
        if candidate is not None and not is_loopback_ip(candidate.host):
            logger.debug("loopback-only ICE: ignoring remote candidate %s", candidate.host)
            return
        await add_remote(self, candidate)

    def datagram_received(self: Any, data: bytes | str, addr: tuple[Any, ...]) -> None:
        if is_loopback_ip(addr[0]):
            received(self, data, addr)

    def guarded_send_stun(self: Any, message: Any, addr: tuple[str, int]) -> None:
        if is_loopback_ip(addr[0]):
            send_stun(self, message, addr)

    async def guarded_send_data(self: Any, data: bytes, addr: tuple[str, int]) -> None:
        if is_loopback_ip(addr[0]):
            await send_data(self, data, addr)

    aioice.ice.get_host_addresses = _loopback_host_addresses
    connection.add_remote_candidate = add_remote_candidate  # type: ignore[method-assign,assignment]
    protocol.datagram_received = datagram_received  # type: ignore[method-assign]
    protocol.send_stun = guarded_send_stun  # type: ignore[method-assign]
    protocol.send_data = guarded_send_data  # type: ignore[method-assign]
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = originals[0]
        connection.add_remote_candidate = originals[1]  # type: ignore[method-assign]
        protocol.datagram_received = originals[2]  # type: ignore[method-assign]
        protocol.send_stun = originals[3]  # type: ignore[method-assign]
        protocol.send_data = originals[4]  # type: ignore[method-assign]
