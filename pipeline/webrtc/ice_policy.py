"""Which addresses aiortc gathers ICE candidates on, and which peers it will talk to.

aioice gathers a host candidate on every interface address except 127.0.0.1 and ::1, contacts
every remote candidate a peer offers, and resolves a browser's mDNS ``.local`` names by
multicast. A server bound to loopback promises to serve this machine only, so it runs inside
`own_machine_ice()`:

- it gathers on 127.0.0.1 **and** on this machine's own interface addresses. A browser never
  offers a loopback candidate (Chromium and Firefox gather none unless started with a flag no
  person sets) and hides its host addresses behind mDNS names, so a server that gathered on
  127.0.0.1 only could be reached by nobody but our own patched client. The browser's checks
  come from its own LAN-address socket to ours: the connection runs over this machine's LAN
  address without ever leaving it (the kernel routes an own address through loopback).
- it accepts a remote candidate only when it is an IP literal of this machine; mDNS names are
  dropped unresolved (no multicast query). The browser's checks still arrive, from its own
  address, and become peer-reflexive candidates: nothing needs resolving.
- it ignores every datagram whose source is not this machine (no reply, no peer-reflexive
  candidate), and sends nothing to an address that is not this machine's. The UDP sockets on the
  LAN address can be reached from the LAN, but a stranger's packet is never answered.

Why not resolve the browser's mDNS names instead: that is a multicast query onto the LAN, and
it would still not tell us whether the name belongs to this machine. Checking the source of
each datagram against the kernel's own interface table does, with no packet sent.

`loopback_only_ice()` is the stricter policy the project's own callers use (the benchmark's
client, tests): gather on 127.0.0.1 only and talk to loopback only.

Both install a filter in aioice's module and classes (``services.seams.aioice_seams``: aioice
has no option for any of this), so they apply to every peer connection in the process (a caller
and an in-process server alike) while active; with both active, the one entered last
applies, and the patches go when the last block ends, whatever the order the blocks end in.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from pipeline.webrtc.own_addresses import is_own_address, parse_ip
from services.seams.aioice_seams import aioice_host_addresses, install_ice_filter, remove_ice_filter

logger = logging.getLogger(__name__)

LOOPBACK_HOST_ADDRESSES = ("127.0.0.1",)


def is_loopback_ip(host: object) -> bool:
    """True for an IP literal in 127.0.0.0/8 or ::1 (names, mDNS included, are not)."""
    address = parse_ip(str(host))
    return address is not None and address.is_loopback


def _loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return list(LOOPBACK_HOST_ADDRESSES) if use_ipv4 else []


def _own_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    # aioice's own list (every interface address but loopback and IPv6 link-local), after
    # 127.0.0.1 so that a peer which does offer loopback (our own callers) pairs with it.
    interfaces = _ORIGINAL_GET_HOST_ADDRESSES(use_ipv4, use_ipv6)
    return [*_loopback_host_addresses(use_ipv4, use_ipv6), *interfaces]


# aioice's own gathering, as it was before any filter.
_ORIGINAL_GET_HOST_ADDRESSES = aioice_host_addresses


class _Policy:
    """Where to gather, and which peers to talk to."""

    def __init__(
        self,
        name: str,
        gather: Callable[[bool, bool], list[str]],
        allowed: Callable[[object], bool],
    ) -> None:
        self.name = name
        self.gather = gather
        self.allowed = allowed


# The policies in force, innermost last. Blocks may end in any order (an in-process server's
# lifespan can outlast the caller's block around it), so aioice's filter is installed while any
# policy is active, always consults the innermost one still active, and is removed by the last.
_active: list[_Policy] = []


class _InnermostPolicy:
    """The filter aioice consults: the innermost active policy, looked up on every call."""

    def gather(self, use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return _active[-1].gather(use_ipv4, use_ipv6)

    def accepts_candidate(self, host: str) -> bool:
        policy = _active[-1]
        if policy.allowed(host):
            return True
        logger.debug("%s ICE: ignoring remote candidate %s", policy.name, host)
        return False

    def allows(self, host: object) -> bool:
        return _active[-1].allowed(host)


@contextlib.contextmanager
def _restricted_ice(
    name: str,
    gather: Callable[[bool, bool], list[str]],
    allowed: Callable[[object], bool],
) -> Iterator[None]:
    """Gather with ``gather``; accept candidates and datagrams, and send, only where ``allowed``."""
    policy = _Policy(name, gather, allowed)
    if not _active:
        install_ice_filter(_InnermostPolicy())
    _active.append(policy)
    try:
        yield
    finally:
        # By identity: this block's policy, wherever it now is in the list.
        del _active[next(i for i, p in enumerate(_active) if p is policy)]
        if not _active:
            remove_ice_filter()


@contextlib.contextmanager
def own_machine_ice() -> Iterator[None]:
    """Within this block, peer connections talk to this machine only (see the module's text)."""
    with _restricted_ice("own-machine", _own_host_addresses, is_own_address):
        yield


@contextlib.contextmanager
def loopback_only_ice() -> Iterator[None]:
    """Within this block, peer connections gather on, and talk to, 127.0.0.1 only."""
    with _restricted_ice("loopback-only", _loopback_host_addresses, is_loopback_ip):
        yield
