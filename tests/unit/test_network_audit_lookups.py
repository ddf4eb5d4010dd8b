"""The network audit (RELIABILITY row 6) sees every way a name can be looked up, not only
getaddrinfo: aioice resolves a STUN server with ``socket.gethostbyname``."""

from __future__ import annotations

import pytest

from pipeline.ops.network_audit import violation


@pytest.mark.parametrize("event", ["socket.getaddrinfo", "socket.gethostbyname"])
def test_a_lookup_of_a_public_name_is_a_violation(event: str) -> None:
    assert violation(event, ("stun.l.google.com",)) == f"{event} 'stun.l.google.com'"


@pytest.mark.parametrize("event", ["socket.getaddrinfo", "socket.gethostbyname"])
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1", b"localhost"])
def test_a_lookup_of_loopback_is_not(event: str, host: str | bytes) -> None:
    assert violation(event, (host,)) is None


def test_sockets_aimed_off_loopback_are_violations() -> None:
    assert violation("socket.sendto", (None, ("192.0.2.7", 3478))) == "socket.sendto '192.0.2.7'"
    assert violation("socket.connect", (None, ("127.0.0.1", 8430))) is None
    assert violation("socket.bind", (None, ("0.0.0.0", 0))) is None
