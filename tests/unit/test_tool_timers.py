"""Session timers: they fire through the session's voice, cancel cleanly and never outlive it."""

from __future__ import annotations

import asyncio
import math

import pytest

from pipeline.tools.timers import (
    SessionTimers,
    Timer,
    TimerError,
    describe_duration,
    parse_duration,
)


class Voice:
    """Records what the timers had the bot say."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.spoke = asyncio.Event()

    async def __call__(self, text: str) -> None:
        self.said.append(text)
        self.spoke.set()


@pytest.mark.asyncio
async def test_a_timer_fires_and_speaks() -> None:
    timers = SessionTimers()
    voice = Voice()
    timers.start(0.05, voice, label="pasta")
    await asyncio.wait_for(voice.spoke.wait(), 2)
    assert voice.said == ["Your pasta timer is done."]
    assert timers.fired == 1
    assert timers.pending() == []
    await timers.close()


@pytest.mark.asyncio
async def test_timers_fire_in_order_of_their_due_time() -> None:
    timers = SessionTimers()
    voice = Voice()
    timers.start(0.15, voice, message="take the cake out")
    timers.start(0.05, voice)
    await asyncio.sleep(0.3)
    assert voice.said == [
        "Time's up: your less than a second timer is done.",
        "Reminder: take the cake out.",
    ]
    await timers.close()


def test_announcements() -> None:
    assert Timer(1, 600, 0).announcement() == "Time's up: your 10 minutes timer is done."
    assert Timer(1, 60, 0, label="tea timer").announcement() == "Your tea timer is done."
    assert Timer(1, 60, 0, message="Call mum.").announcement() == "Reminder: Call mum."


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (45, "45 seconds"),
        (60, "1 minute"),
        (5400, "1 hour 30 minutes"),
        (3661, "1 hour 1 minute 1 second"),
    ],
)
def test_describe_duration(seconds: float, words: str) -> None:
    assert describe_duration(seconds) == words


@pytest.mark.asyncio
async def test_cancel_by_label_keeps_the_others() -> None:
    timers = SessionTimers()
    voice = Voice()
    timers.start(60, voice, label="pasta")
    timers.start(60, voice, label="eggs")
    timers.start(60, voice, message="water the plants")
    cancelled = await timers.cancel("Pasta")
    assert [t.label for t in cancelled] == ["pasta"]
    assert cancelled[0].task is not None and cancelled[0].task.cancelled()
    assert await timers.cancel("plants") != []
    assert [t.label for t in timers.pending()] == ["eggs"]
    assert len(await timers.cancel()) == 1
    assert timers.pending() == []
    assert voice.said == []


@pytest.mark.asyncio
async def test_close_cancels_every_timer_and_refuses_new_ones() -> None:
    timers = SessionTimers()
    voice = Voice()
    started = [timers.start(3600, voice) for _ in range(3)]
    await timers.close()
    await timers.close()  # idempotent
    assert timers.pending() == []
    assert all(t.task is not None and t.task.done() for t in started)
    with pytest.raises(TimerError, match="the session has ended"):
        timers.start(1, voice)
    assert voice.said == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("seconds", "reason"),
    [
        (0, "more than zero"),
        (-5, "more than zero"),
        (math.nan, "more than zero"),
        (2 * 86400, "the longest timer is 24 hours"),
    ],
)
async def test_bad_durations_are_refused(seconds: float, reason: str) -> None:
    timers = SessionTimers()
    with pytest.raises(TimerError, match=reason):
        timers.start(seconds, Voice())
    await timers.close()


@pytest.mark.asyncio
async def test_the_number_of_timers_is_bounded() -> None:
    timers = SessionTimers(max_timers=2)
    voice = Voice()
    timers.start(60, voice)
    timers.start(60, voice)
    with pytest.raises(TimerError, match="already 2 timers"):
        timers.start(60, voice)
    await timers.close()


@pytest.mark.asyncio
async def test_a_voice_that_fails_does_not_break_the_timers() -> None:
    timers = SessionTimers()

    async def broken(_text: str) -> None:
        raise RuntimeError("the pipeline is gone")

    timers.start(0.01, broken)
    await asyncio.sleep(0.1)
    assert timers.fired == 1
    await timers.close()


@pytest.mark.parametrize(
    ("spoken", "seconds"),
    [
        ("10 minutes", 600),
        ("1 hour 30 minutes", 5400),
        ("an hour and a half", 5400),
        ("half an hour", 1800),
        ("two hours", 7200),
        ("1 minute and 30 seconds", 90),
        ("1.5 hours", 5400),
        ("90 s", 90),
        ("20 min", 1200),
        ("1:30", 90),
        ("5", 300),
        ("10 Minutes Timer", 600),
    ],
)
def test_parse_duration(spoken: str, seconds: float) -> None:
    assert parse_duration(spoken) == seconds


@pytest.mark.parametrize("spoken", ["soon", "", "minutes", "is it"])
def test_parse_duration_refuses_what_is_not_a_duration(spoken: str) -> None:
    with pytest.raises(TimerError, match="no duration"):
        parse_duration(spoken)
