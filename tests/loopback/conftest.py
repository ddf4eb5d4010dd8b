"""Fixtures for loopback tests: real peers on 127.0.0.1, a network audit and a task-leak check."""

import asyncio
import ipaddress
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from tests.loopback.echo_bot import EchoServer, run_echo_server

_AUDITED_EVENTS = ("socket.connect", "socket.sendto", "socket.bind", "socket.getaddrinfo")


class _AuditState:
    """Process-wide, since an audit hook cannot be removed once added."""

    hook_installed = False
    log: list[str] | None = None  # destinations seen; None while no test is auditing


_audit = _AuditState()


def _is_local(host: object, *, bind: bool) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None or host in ("localhost", ""):
        return True
    try:
        address = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False  # a host name other than localhost would need a resolver
    return address.is_loopback or (bind and address.is_unspecified)


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    log = _audit.log
    if log is None or event not in _AUDITED_EVENTS:
        return
    if event == "socket.getaddrinfo":
        host = args[0]
    else:
        address = args[1]
        if not isinstance(address, tuple):
            return  # AF_UNIX paths
        host = address[0]
    if not _is_local(host, bind=event == "socket.bind"):
        log.append(f"{event} {host!r}")


@pytest.fixture
def network_audit() -> Iterator[list[str]]:
    """Record every socket call aimed at a non-loopback address during the test.

    Audit hooks cannot be removed, so one hook is installed for the session and only
    records while this fixture is active. The test asserts the returned list is empty.
    """
    if not _audit.hook_installed:
        sys.addaudithook(_audit_hook)
        _audit.hook_installed = True
    _audit.log = []
    try:
        yield _audit.log
    finally:
        _audit.log = None


@pytest_asyncio.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail the test if asyncio tasks it started are still alive once everything closed."""
    before = set(asyncio.all_tasks())
    yield
    deadline = asyncio.get_running_loop().time() + 5.0
    while True:
        leaked = set(asyncio.all_tasks()) - before - {asyncio.current_task()}
        if not leaked or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert not leaked, "leaked tasks: " + ", ".join(sorted(repr(t.get_coro()) for t in leaked))


@pytest_asyncio.fixture
async def echo_server(no_leaked_tasks: None) -> AsyncIterator[EchoServer]:
    """An echo bot behind pipecat's SmallWebRTC HTTP contract on 127.0.0.1."""
    async with run_echo_server() as server:
        yield server
