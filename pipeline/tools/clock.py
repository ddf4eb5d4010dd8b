"""The current time and date, worded for speech, in the machine's local time zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

Clock = Callable[[], datetime]


def local_now() -> datetime:
    """The current time in the machine's local time zone (aware)."""
    return datetime.now().astimezone()


def describe(now: datetime) -> dict[str, str]:
    """``now`` as the ``get_current_time`` tool reports it: time, date, weekday and zone."""
    hour = now.hour % 12 or 12
    return {
        "time": f"{hour}:{now.minute:02d} {'AM' if now.hour < 12 else 'PM'}",
        "date": f"{now:%A}, {now:%B} {now.day}, {now.year}",
        "iso": now.isoformat(timespec="seconds"),
        "timezone": now.tzname() or "local time",
    }
