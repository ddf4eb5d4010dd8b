"""services.off_loop: a model called on the event loop is reported, on a worker it is not."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from loguru import logger

from services.off_loop import ON_LOOP, check_off_loop


@pytest.fixture
def errors() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda message: seen.append(str(message)), level="ERROR")
    yield seen
    logger.remove(sink)


def test_a_call_outside_any_loop_is_fine(errors: list[str]) -> None:
    assert check_off_loop("Whisper")
    assert errors == []


@pytest.mark.asyncio
async def test_a_call_on_the_loop_is_reported_and_one_on_a_worker_thread_is_not(
    errors: list[str],
) -> None:
    assert not check_off_loop("Kokoro")
    assert len(errors) == 1 and ON_LOOP in errors[0] and "Kokoro" in errors[0]
    assert await asyncio.to_thread(check_off_loop, "Kokoro")
    assert len(errors) == 1
