"""Turns take the LLM server one at a time when the server itself serves one at a time.

llama-cpp-python's server holds a lock for the whole of a request, stream included: a second
request waits inside the server without a byte of answer, so its client's read timeout (the
turn's bound for a hung server, ``LLMConfig.request_timeout_secs``) runs while another
session's answer is still being generated. With two people talking at once, the second one got
the spoken apology for a server that was only busy. The gate moves that queue into the agent:
a turn's request is sent when the server is free, so its timeout measures the server's work on
it alone, and the wait in line has its own, longer bound. A prefill (reading a prompt ahead)
is only worth sending to an idle server: it never waits in line.

vLLM batches requests and an external server's policy is unknown: no gate (``slots`` None).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class LLMGate:
    """At most ``slots`` requests at the server at once, in order of arrival; None: no limit."""

    def __init__(self, slots: int | None, queue_timeout_secs: float) -> None:
        self._slots = asyncio.Semaphore(slots) if slots else None
        self._queue_timeout_secs = queue_timeout_secs
        self.waited = 0

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold a slot for a turn's request; TimeoutError after ``queue_timeout_secs`` in line.

        pipecat answers a TimeoutError from the request with the spoken apology, which is what
        a turn stuck behind a wedged server should get.
        """
        if self._slots is None:
            yield
            return
        if self._slots.locked():
            self.waited += 1
        async with asyncio.timeout(self._queue_timeout_secs):
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()

    @contextlib.asynccontextmanager
    async def if_idle(self) -> AsyncIterator[bool]:
        """Hold a slot only if one is free now: yields whether it did (then send, else skip)."""
        if self._slots is None:
            yield True
            return
        if self._slots.locked():
            yield False
            return
        await self._slots.acquire()  # free, so this does not wait
        try:
            yield True
        finally:
            self._slots.release()
