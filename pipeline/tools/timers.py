"""One session's timers and reminders: each a task that sleeps, then has the bot say so.

The session owns its :class:`SessionTimers`; :meth:`SessionTimers.close` (run when the session's
pipeline is torn down) cancels whatever has not fired, so no timer outlives its session or
speaks into a closed pipeline.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from loguru import logger

Say = Callable[[str], Awaitable[None]]


class TimerError(ValueError):
    """A timer that cannot be started (bad duration, too many, session over)."""


# Seconds per unit, by the unit's first letter (hours, minutes, seconds and abbreviations).
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_WORD_NUMBERS = {
    "a": 1.0,
    "an": 1.0,
    "one": 1.0,
    "two": 2.0,
    "three": 3.0,
    "four": 4.0,
    "five": 5.0,
    "ten": 10.0,
    "fifteen": 15.0,
    "twenty": 20.0,
    "thirty": 30.0,
    "forty-five": 45.0,
    "sixty": 60.0,
    "ninety": 90.0,
}
_PART = re.compile(
    r"([\d.]+|[a-z-]+)\s*(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b(\s+and a half)?"
)


def parse_duration(text: str) -> float:
    """Seconds in a spoken duration: "10 minutes", "1 hour 30 minutes", "an hour and a half",
    "half an hour", "90 s", "1:30" (minutes:seconds). A bare number is minutes.

    Raises:
        TimerError: no duration found.
    """
    spoken = " ".join(text.strip().lower().replace(",", " ").split())
    if re.fullmatch(r"\d+(?:\.\d+)?", spoken):
        return float(spoken) * 60
    clock = re.fullmatch(r"(\d+):(\d{2})", spoken)
    if clock:
        return float(int(clock.group(1)) * 60 + int(clock.group(2)))
    total, found = 0.0, False
    if re.search(r"\bhalf an? hour\b", spoken):
        spoken = re.sub(r"\bhalf an? hour\b", " ", spoken)
        total, found = 1800.0, True
    for amount, unit, and_a_half in _PART.findall(spoken):
        value = _WORD_NUMBERS.get(amount)
        if value is None:
            try:
                value = float(amount)
            except ValueError:
                continue
        size = _UNIT_SECONDS[unit[0]]
        total += value * size + (size / 2 if and_a_half else 0.0)
        found = True
    if not found:
        raise TimerError(f"no duration in {text!r}")
    return total


def describe_duration(seconds: float) -> str:
    """A duration in words: ``1 hour 30 minutes``, ``45 seconds``."""
    total = round(seconds)
    parts = []
    for size, name in ((3600, "hour"), (60, "minute"), (1, "second")):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return " ".join(parts) or "less than a second"


@dataclass
class Timer:
    """A running timer or reminder."""

    id: int
    seconds: float
    due: float
    label: str | None = None
    message: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def announcement(self) -> str:
        """What the bot says when it fires."""
        if self.message:
            return f"Reminder: {self.message.strip().rstrip('.')}."
        if self.label:
            label = self.label.strip().removesuffix(" timer").removesuffix(" Timer")
            return f"Your {label} timer is done."
        return f"Time's up: your {describe_duration(self.seconds)} timer is done."

    def remaining(self, now: float) -> float:
        """Seconds left until it fires."""
        return max(0.0, self.due - now)


class SessionTimers:
    """The timers of one session, each firing through the ``say`` it was started with."""

    def __init__(
        self,
        *,
        max_timers: int = 10,
        max_secs: float = 24 * 3600.0,
        session_id: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_timers = max_timers
        self._max_secs = max_secs
        self._session_id = session_id
        self._clock = clock
        self._timers: dict[int, Timer] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self.fired = 0

    def start(
        self, seconds: float, say: Say, *, label: str | None = None, message: str | None = None
    ) -> Timer:
        """Start a timer (a reminder when ``message`` is given) that calls ``say`` when due.

        Raises:
            TimerError: a duration not above 0 or over the maximum, too many timers, or the
                session has ended.
        """
        if self._closed:
            raise TimerError("the session has ended")
        if not seconds > 0:
            raise TimerError("the duration must be more than zero seconds")
        if seconds > self._max_secs:
            raise TimerError(f"the longest timer is {describe_duration(self._max_secs)}")
        if len(self._timers) >= self._max_timers:
            raise TimerError(f"there are already {self._max_timers} timers running")
        timer = Timer(next(self._ids), seconds, self._clock() + seconds, label, message)
        timer.task = asyncio.create_task(self._run(timer, say), name=f"timer-{timer.id}")
        self._timers[timer.id] = timer
        logger.debug(f"[{self._session_id}] timer {timer.id} set for {seconds:.0f} s")
        return timer

    def pending(self) -> list[Timer]:
        """The timers not fired yet, soonest first."""
        return sorted(self._timers.values(), key=lambda t: t.due)

    async def cancel(self, label: str | None = None) -> list[Timer]:
        """Cancel the timers whose label or message mentions ``label`` (all of them if None)."""
        wanted = label.strip().lower() if label else ""
        chosen = [
            t
            for t in self.pending()
            if not wanted or wanted in f"{t.label or ''} {t.message or ''}".lower()
        ]
        for timer in chosen:
            await self._stop(timer)
        return chosen

    async def close(self) -> None:
        """Cancel every timer that has not fired; later starts are refused. Idempotent."""
        self._closed = True
        for timer in list(self._timers.values()):
            await self._stop(timer)

    async def _stop(self, timer: Timer) -> None:
        self._timers.pop(timer.id, None)
        task = timer.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self, timer: Timer, say: Say) -> None:
        await asyncio.sleep(timer.seconds)
        self._timers.pop(timer.id, None)
        self.fired += 1
        logger.info(f"[{self._session_id}] timer {timer.id} fired")
        try:
            await say(timer.announcement())
        except Exception as error:  # noqa: BLE001 - a closing pipeline must not crash the timer
            logger.warning(f"[{self._session_id}] timer {timer.id} could not speak: {error!r}")
