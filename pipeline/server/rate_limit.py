"""A token bucket per client address, for the offer endpoints.

Every offer builds a peer connection and a pipeline, so a client (or a buggy page in a reload
loop) gets ``capacity`` offers at once and then one per ``window / capacity`` seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``capacity`` requests per ``window_secs`` per key, refilled continuously."""

    def __init__(
        self,
        capacity: int,
        window_secs: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 4096,
    ) -> None:
        if capacity < 1 or window_secs <= 0:
            raise ValueError("a rate limit needs capacity >= 1 and a positive window")
        self.capacity = capacity
        self.window_secs = window_secs
        self._rate = capacity / window_secs
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is free."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.capacity), now)
        else:
            bucket.tokens = min(
                float(self.capacity), bucket.tokens + (now - bucket.updated) * self._rate
            )
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely: they behave exactly like new ones."""
        if len(self._buckets) < self._max_keys:
            return
        full_after = self.window_secs
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]
        # Still full (a flood from many addresses): drop the oldest half rather than grow.
        if len(self._buckets) >= self._max_keys:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].updated)
            for key in oldest[: len(oldest) // 2]:
                del self._buckets[key]


def retry_after_header(wait_secs: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_secs)))
