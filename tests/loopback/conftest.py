"""Fixtures for loopback tests: real peers on 127.0.0.1 and a network audit.

The task-leak check (``no_leaked_tasks``) is in tests/conftest.py, applied to every async test.
"""

import sys
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from pipeline.ops.network_audit import make_hook
from tests.loopback.echo_bot import EchoServer, run_echo_server


class _AuditState:
    """Process-wide, since an audit hook cannot be removed once added."""

    hook_installed = False
    log: list[str] | None = None  # destinations seen; None while no test is auditing


_audit = _AuditState()


def _record(found: str) -> None:
    if _audit.log is not None:
        _audit.log.append(found)


@pytest.fixture
def network_audit() -> Iterator[list[str]]:
    """Record every socket call aimed at a non-loopback address during the test.

    Audit hooks cannot be removed, so one hook is installed for the session and only
    records while this fixture is active. The test asserts the returned list is empty.
    """
    if not _audit.hook_installed:
        sys.addaudithook(make_hook(_record))
        _audit.hook_installed = True
    _audit.log = []
    try:
        yield _audit.log
    finally:
        _audit.log = None


@pytest_asyncio.fixture
async def echo_server(no_leaked_tasks: None) -> AsyncIterator[EchoServer]:
    """An echo bot behind pipecat's SmallWebRTC HTTP contract on 127.0.0.1."""
    async with run_echo_server() as server:
        yield server
