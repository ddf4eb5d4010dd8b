"""This machine's addresses and names, as a phone on the LAN would reach it.

Read from the kernel's interface table (``getifaddrs`` through ifaddr, shared with
:mod:`pipeline.webrtc.own_addresses`) and, only where that table is empty, from the resolver's
answer for the host name (``/etc/hosts`` first). Nothing here sends a packet or starts a
process: no UDP "connect to 8.8.8.8" trick, no mDNS lookup of ``<hostname>.local``.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from pipeline.webrtc.own_addresses import IPAddress, interface_addresses

LOOPBACK_ADDRESSES: tuple[IPAddress, ...] = (
    ipaddress.IPv4Address("127.0.0.1"),
    ipaddress.IPv6Address("::1"),
)


@dataclass(frozen=True)
class LocalNames:
    """The names and addresses a server certificate must cover, and the URLs to print."""

    hostname: str
    lan_addresses: tuple[IPAddress, ...]

    @property
    def dns_names(self) -> tuple[str, ...]:
        """``localhost``, the bare host name and its mDNS name ``<hostname>.local``."""
        names = ["localhost"]
        short = self.hostname.split(".")[0].lower()
        if short and short != "localhost":
            names += [short, f"{short}.local"]
        return tuple(dict.fromkeys(names))

    @property
    def ip_addresses(self) -> tuple[IPAddress, ...]:
        """LAN addresses first, then 127.0.0.1 and ::1."""
        return tuple(dict.fromkeys((*self.lan_addresses, *LOOPBACK_ADDRESSES)))


def is_lan_address(address: IPAddress) -> bool:
    """True for an address another device could use: not loopback, link-local or multicast."""
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
    )


def _sort_key(address: IPAddress) -> tuple[int, int, str]:
    # IPv4 private (what phones show in their Wi-Fi settings) first, then other IPv4, then IPv6.
    return (address.version, 0 if address.is_private else 1, str(address))


def resolver_addresses(hostname: str) -> list[IPAddress]:
    """The addresses the resolver gives for this host's own name (``/etc/hosts`` first)."""
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    found: list[IPAddress] = []
    for info in infos:
        try:
            found.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    return found


def local_names(hostname: str | None = None) -> LocalNames:
    """This machine's host name and LAN addresses, best-reachable first."""
    name = hostname or socket.gethostname()
    addresses = list(interface_addresses()) or resolver_addresses(name)
    lan = sorted({a for a in addresses if is_lan_address(a)}, key=_sort_key)
    return LocalNames(hostname=name, lan_addresses=tuple(lan))


def url_host(address: IPAddress | str) -> str:
    """An address or name as it goes in a URL (IPv6 in brackets)."""
    text = str(address)
    return f"[{text}]" if ":" in text else text
