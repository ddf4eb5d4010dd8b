"""aioice's gathering and its datagrams, filtered by address: the only way to keep ICE to a set of
addresses, since aioice (0.13) has no option for where it gathers, which remote candidates it
accepts, or whom it answers and sends to.

:func:`install_ice_filter` patches aioice's module function and two of its classes, process-wide
(every peer connection, a caller's and an in-process server's alike), until
:func:`remove_ice_filter`; which addresses are allowed is the caller's business
(``pipeline/webrtc/ice_policy.py``). The patched names are checked against the pinned version by
``tests/unit/test_library_seams.py``.
"""

from __future__ import annotations

from typing import Any, Protocol

import aioice.ice
from aioice.candidate import Candidate

# aioice's own gathering (every interface address but loopback and IPv6 link-local), kept before
# any patch so that a filter can extend it rather than replace it.
aioice_host_addresses = aioice.ice.get_host_addresses


class IceFilter(Protocol):
    """Where to gather, and which peers to talk to; asked on every call, so that it may change
    while installed."""

    def gather(self, use_ipv4: bool, use_ipv6: bool) -> list[str]:
        """The local addresses to gather host candidates on."""
        ...

    def accepts_candidate(self, host: str) -> bool:
        """Whether a remote candidate at ``host`` (an IP literal or an mDNS name) is used."""
        ...

    def allows(self, host: object) -> bool:
        """Whether a datagram from, or to, ``host`` is received or sent."""
        ...


# aioice's own functions while patched (one entry at most).
_saved: list[tuple[Any, ...]] = []


def install_ice_filter(ice_filter: IceFilter) -> None:
    """Make aioice gather, accept remote candidates, receive and send only as ``ice_filter``
    says, until :func:`remove_ice_filter`. Not nested: install it once."""
    if _saved:
        raise RuntimeError("an ICE filter is installed already")
    connection = aioice.ice.Connection
    protocol = aioice.ice.StunProtocol
    originals = (
        aioice.ice.get_host_addresses,
        connection.add_remote_candidate,
        protocol.datagram_received,
        protocol.send_stun,
        protocol.send_data,
    )
    _saved.append(originals)
    add_remote, received, send_stun, send_data = originals[1:]

    # Connection.gather_candidates calls get_host_addresses as a module global: replacing it in
    # the module is what changes where candidates are gathered.
    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ice_filter.gather(use_ipv4, use_ipv6)

    # Every remote candidate, trickled or from the SDP, goes through add_remote_candidate; a
    # refused one never reaches aioice (no check list entry, no mDNS lookup).
    async def add_remote_candidate(self: Any, candidate: Candidate | None) -> None:
        if candidate is not None and not ice_filter.accepts_candidate(candidate.host):
            return
        await add_remote(self, candidate)

    # Each datagram of each ICE socket enters here: a refused source gets no reply and no
    # peer-reflexive candidate.
    def datagram_received(self: Any, data: bytes | str, addr: tuple[Any, ...]) -> None:
        if ice_filter.allows(addr[0]):
            received(self, data, addr)

    # STUN checks and the media both leave through these two.
    def guarded_send_stun(self: Any, message: Any, addr: tuple[str, int]) -> None:
        if ice_filter.allows(addr[0]):
            send_stun(self, message, addr)

    async def guarded_send_data(self: Any, data: bytes, addr: tuple[str, int]) -> None:
        if ice_filter.allows(addr[0]):
            await send_data(self, data, addr)

    aioice.ice.get_host_addresses = get_host_addresses
    connection.add_remote_candidate = add_remote_candidate  # type: ignore[method-assign,assignment]
    protocol.datagram_received = datagram_received  # type: ignore[method-assign]
    protocol.send_stun = guarded_send_stun  # type: ignore[method-assign]
    protocol.send_data = guarded_send_data  # type: ignore[method-assign]


def remove_ice_filter() -> None:
    """Give aioice its own functions back."""
    originals = _saved.pop()
    connection = aioice.ice.Connection
    protocol = aioice.ice.StunProtocol
    aioice.ice.get_host_addresses = originals[0]
    connection.add_remote_candidate = originals[1]  # type: ignore[method-assign]
    protocol.datagram_received = originals[2]  # type: ignore[method-assign]
    protocol.send_stun = originals[3]  # type: ignore[method-assign]
    protocol.send_data = originals[4]  # type: ignore[method-assign]
