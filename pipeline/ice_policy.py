"""Which local addresses aiortc offers as ICE host candidates.

aioice gathers a host candidate on every interface address except 127.0.0.1 and ::1, so two
peers on one machine connect over its LAN address, and a machine with only loopback gathers
nothing at all. For a session that must stay on loopback, `loopback_only_ice()` makes aiortc
gather on 127.0.0.1 only. It patches a module global, so it applies to every peer connection
in the process (the caller and an in-process server alike) while it is active.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aioice.ice

LOOPBACK_HOST_ADDRESSES = ("127.0.0.1",)


def _loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return list(LOOPBACK_HOST_ADDRESSES) if use_ipv4 else []


@contextlib.contextmanager
def loopback_only_ice() -> Iterator[None]:
    """Within this block, peer connections gather ICE host candidates on 127.0.0.1 only."""
    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = _loopback_host_addresses
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original
