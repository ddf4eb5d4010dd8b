"""Whether an IP address belongs to this machine: loopback, or an address on one of its interfaces.

The loopback bind promises that the agent talks to nothing but this machine. A browser on this
machine does not talk WebRTC over 127.0.0.1 (browsers never gather loopback candidates), it talks
from its own LAN address to ours, so "this machine" is loopback plus every address the kernel
has on an interface. Asked for every datagram of every call and from the network audit's hook on
every socket call, so the answer is a set lookup; the set is read again (``getifaddrs`` through
``ifaddr``, no subprocess, no packet) when an address is not in it, at most once a second, so a
new DHCP lease is picked up and a foreign sender cannot make us re-read the table per packet.
"""

from __future__ import annotations

import functools
import ipaddress
import threading
import time

import ifaddr

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# How often a miss may re-read the interface table.
REFRESH_INTERVAL_S = 1.0


@functools.lru_cache(maxsize=512)
def parse_ip(host: str) -> IPAddress | None:
    """The address in an IP literal (an IPv6 zone suffix dropped), or None for a name."""
    try:
        address = ipaddress.ip_address(host.split("%", maxsplit=1)[0])
    except ValueError:
        return None
    # A dual-stack socket reports an IPv4 sender as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def interface_addresses() -> frozenset[IPAddress]:
    """Every address on this machine's interfaces, loopback included, read now."""
    found: set[IPAddress] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            host = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            address = parse_ip(str(host))
            if address is not None:
                found.add(address)
    return frozenset(found)


class _InterfaceTable:
    """The last reading of the interface table, and when it was taken."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.addresses: frozenset[IPAddress] = frozenset()
        self._read_at = float("-inf")

    def refresh(self, now: float) -> frozenset[IPAddress]:
        """Read the table again unless that was done less than REFRESH_INTERVAL_S ago."""
        with self._lock:
            if now - self._read_at >= REFRESH_INTERVAL_S:
                self.addresses = interface_addresses()
                self._read_at = now
            return self.addresses

    def forget(self) -> None:
        """Let the next miss read the table whatever the time."""
        with self._lock:
            self._read_at = float("-inf")


_table = _InterfaceTable()


def forget_addresses() -> None:
    """Let the next address not yet known read the interface table again at once."""
    _table.forget()


def is_own_address(host: object) -> bool:
    """True for an IP literal that is loopback or on one of this machine's interfaces.

    Names are never resolved (an mDNS ``.local`` name would need multicast): they are False.
    """
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    address = parse_ip(str(host))
    if address is None:
        return False
    if address.is_loopback or address in _table.addresses:
        return True
    return address in _table.refresh(time.monotonic())
