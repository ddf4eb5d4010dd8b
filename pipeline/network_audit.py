"""Proof that a process stays on loopback: an audit hook on socket calls.

With ``JETVOICE_NETWORK_AUDIT=/path/file`` set, ``jetvoice serve`` and the LLM server it starts
append one line per socket call aimed at a non-loopback address (connect, sendto, bind,
getaddrinfo of any name but localhost) to that file. Tests set it for a whole spoken session
and assert the file stays empty. It records rather than raises: a raise inside a library's
event loop would be swallowed or turn into an unrelated failure.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

ENV_VAR = "JETVOICE_NETWORK_AUDIT"
AUDITED_EVENTS = ("socket.connect", "socket.sendto", "socket.bind", "socket.getaddrinfo")


def is_local(host: object, *, bind: bool) -> bool:
    """Whether ``host`` is loopback (or, for bind, the unspecified address)."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None or host in ("localhost", ""):
        return True
    try:
        address = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False  # a host name other than localhost would need a resolver
    return address.is_loopback or (bind and address.is_unspecified)


def violation(event: str, args: tuple[Any, ...]) -> str | None:
    """A description of the call if it leaves loopback, else None."""
    if event not in AUDITED_EVENTS:
        return None
    if event == "socket.getaddrinfo":
        host = args[0]
    else:
        address = args[1]
        if not isinstance(address, tuple):
            return None  # AF_UNIX paths
        host = address[0]
    if is_local(host, bind=event == "socket.bind"):
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
