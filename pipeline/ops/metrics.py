"""Process metrics for ``GET /metrics``, kept and rendered by prometheus_client.

Counted by the sessions as things happen: sessions, turns, errors by stage, and per-stage
latency histograms from each turn's breakdown. Each runtime has its own registry (not the
library's global one), with the process's RSS, CPU time and open files from its
``ProcessCollector``; values read only at scrape time come in as extra collectors.
"""

from __future__ import annotations

import threading

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.registry import Collector

# generate_latest writes the 0.0.4 text format whatever the library's newest content type is.
PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Seconds; spans a GPU turn (a few hundred ms) to a slow CPU turn with the silence fallback.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0)


class Metrics:
    """Counters and histograms for one agent process, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        registry = self.registry
        self._sessions_started = Counter(
            "jetvoice_sessions_started", "Voice sessions given a pipeline.", registry=registry
        )
        self._sessions_active = Gauge(
            "jetvoice_sessions_active", "Voice sessions running now.", registry=registry
        )
        self._sessions_refused = Counter(
            "jetvoice_sessions_refused", "Offers refused, by reason.", ["reason"], registry=registry
        )
        self._turns = Counter("jetvoice_turns", "User turns answered.", registry=registry)
        self._fallback_turns = Counter(
            "jetvoice_turn_fallbacks", "Turns ended by the silence fallback.", registry=registry
        )
        self._errors = Counter(
            "jetvoice_errors",
            "Service failures during turns, by stage.",
            ["stage"],
            registry=registry,
        )
        self._stages = Histogram(
            "jetvoice_stage_seconds",
            "Per-turn latency of each stage.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # A session that ends twice must not take the gauge below zero.
        self._lock = threading.Lock()
        self._active = 0

    def session_started(self) -> None:
        """A peer got a pipeline."""
        self._sessions_started.inc()
        with self._lock:
            self._active += 1
            self._sessions_active.set(self._active)

    def session_ended(self) -> None:
        """A session's pipeline finished."""
        with self._lock:
            self._active = max(0, self._active - 1)
            self._sessions_active.set(self._active)

    def session_refused(self, reason: str) -> None:
        """An offer was turned away (busy, rate limited, unauthorised, invalid...)."""
        self._sessions_refused.labels(reason=reason).inc()

    def error(self, stage: str) -> None:
        """A service failed during a turn."""
        self._errors.labels(stage=stage).inc()

    def turn(self, stages_secs: dict[str, float], *, fallback: bool) -> None:
        """One answered turn and how long each stage took."""
        self._turns.inc()
        if fallback:
            self._fallback_turns.inc()
        for stage, seconds in stages_secs.items():
            self._stages.labels(stage=stage).observe(seconds)

    def render(self, *scraped: Collector) -> bytes:
        """This registry, then values read now, in the Prometheus text exposition format."""
        return b"".join(generate_latest(source) for source in (self.registry, *scraped))
