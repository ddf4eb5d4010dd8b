"""The per-client token bucket."""

from __future__ import annotations

import pytest

from pipeline.server.rate_limit import RateLimiter, retry_after_header


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, 10.0, clock=clock)
    assert [limiter.acquire("a") for _ in range(10)] == [0.0] * 10
    wait = limiter.acquire("a")
    assert wait == pytest.approx(1.0)
    assert limiter.acquire("b") == 0.0  # per client
    clock.now += 1.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    clock.now += 100.0
    assert [limiter.acquire("a") for _ in range(10)] == [0.0] * 10  # capped at the burst


def test_many_clients_do_not_grow_without_bound() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 1.0, clock=clock, max_keys=100)
    for i in range(1000):
        limiter.acquire(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._buckets) <= 100


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"


def test_invalid_limits() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RateLimiter(0, 1.0)
