"""Proof that a process stays on this machine: an audit hook on Python's socket calls.

With ``JETVOICE_NETWORK_AUDIT=/path/file`` set, ``jetvoice serve`` and the LLM server it starts
append one line per socket call aimed at an address that is not this machine's (loopback or an
address on one of its interfaces: connect, sendto, bind, and a name lookup, getaddrinfo or
gethostbyname, of any name but localhost) to that file. Native libraries that call libc
directly are not seen here; the system-call audit (``tests/e2e/test_syscall_audit.py``) covers
them. Tests set it for a whole spoken session and assert the file stays empty. It records
rather than raises: a raise inside a library's event loop would be swallowed or turn into an
unrelated failure. The one exception is a LAN peer the user configured (Home Assistant, off by
default): see :func:`allow_lan_peer`.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pipeline.webrtc.own_addresses import is_own_address, parse_ip

ENV_VAR = "JETVOICE_NETWORK_AUDIT"
# Name lookups leave the house too (a resolver query): aioice resolves a STUN server with
# socket.gethostbyname, which raises its own event, not getaddrinfo's.
LOOKUP_EVENTS = ("socket.getaddrinfo", "socket.gethostbyname")
AUDITED_EVENTS = ("socket.connect", "socket.sendto", "socket.bind", *LOOKUP_EVENTS)

# Host names of configured LAN peers (Home Assistant). While there is one, connections to
# private LAN addresses are accepted too: the name resolves to one of them. Empty by default.
_lan_peers: set[str] = set()


def allow_lan_peer(url: str) -> None:
    """Accept calls to the configured LAN peer at ``url`` (its host name, or any private LAN
    address it may resolve to) from now on. Only for a peer the user configured."""
    host = urlsplit(url).hostname
    if host:
        _lan_peers.add(host.lower())


def _is_lan_peer(host: object) -> bool:
    if not _lan_peers or host is None:
        return False
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host)
    if host.lower() in _lan_peers:
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return address.is_private or address.is_link_local


def is_local(host: object, *, bind: bool) -> bool:
    """Whether ``host`` is this machine: loopback or one of its own interface addresses (a
    browser on this machine calls WebRTC from its LAN address to ours), or, for bind, the
    unspecified address."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None or host in ("localhost", ""):
        return True
    address = parse_ip(str(host))
    if address is None:
        return False  # a host name other than localhost would need a resolver
    return (bind and address.is_unspecified) or is_own_address(host)


def violation(event: str, args: tuple[Any, ...]) -> str | None:
    """A description of the call if it leaves loopback, else None."""
    if event not in AUDITED_EVENTS:
        return None
    if event in LOOKUP_EVENTS:
        host = args[0]
    else:
        address = args[1]
        if not isinstance(address, tuple):
            return None  # AF_UNIX paths
        host = address[0]
    if is_local(host, bind=event == "socket.bind"):
        return None
    if event != "socket.bind" and _is_lan_peer(host):
        return None
    return f"{event} {host!r}"


def make_hook(record: Callable[[str], None]) -> Callable[[str, tuple[Any, ...]], None]:
    """An audit hook passing each violation to ``record``."""

    def hook(event: str, args: tuple[Any, ...]) -> None:
        found = violation(event, args)
        if found is not None:
            record(found)

    return hook


def install_from_environment() -> bool:
    """Install the file-recording hook when ``JETVOICE_NETWORK_AUDIT`` is set."""
    path = os.environ.get(ENV_VAR)
    if not path:
        return False
    lock = threading.Lock()
    tag = f"pid {os.getpid()} {os.path.basename(sys.argv[0]) or 'python'}"

    def record(found: str) -> None:
        with lock, open(path, "a", encoding="utf-8") as log:
            log.write(f"{tag}: {found}\n")

    sys.addaudithook(make_hook(record))
    return True
