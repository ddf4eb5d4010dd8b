"""Process metrics in the Prometheus text format, with no client library.

Counted by the sessions as things happen, rendered by ``GET /metrics``: sessions, turns,
errors by stage, and per-stage latency histograms from each turn's breakdown.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; spans a GPU turn (a few hundred ms) to a slow CPU turn with the silence fallback.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0)


@dataclass
class Histogram:
    """Cumulative-bucket histogram of observations in seconds."""

    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * len(self.buckets)

    def observe(self, seconds: float) -> None:
        """Add one observation."""
        index = bisect.bisect_left(self.buckets, seconds)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += seconds
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        """Prometheus exposition lines for this histogram."""
        out: list[str] = []
        running = 0
        sep = "," if labels else ""
        for bound, count in zip(self.buckets, self.counts, strict=True):
            running += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound:g}"}} {running}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        out.append(f"{name}_sum{{{labels}}} {self.total:.6f}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


class Metrics:
    """Thread-safe counters and histograms for one agent process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sessions_started = 0
        self.sessions_refused: dict[str, int] = {}
        self.active_sessions = 0
        self.turns = 0
        self.fallback_turns = 0
        self.errors: dict[str, int] = {}
        self.stages: dict[str, Histogram] = {}

    def session_started(self) -> None:
        """A peer got a pipeline."""
        with self._lock:
            self.sessions_started += 1
            self.active_sessions += 1

    def session_ended(self) -> None:
        """A session's pipeline finished."""
        with self._lock:
            self.active_sessions = max(0, self.active_sessions - 1)

    def session_refused(self, reason: str) -> None:
        """An offer was turned away (busy, rate limited, unauthorised, invalid...)."""
        with self._lock:
            self.sessions_refused[reason] = self.sessions_refused.get(reason, 0) + 1

    def error(self, stage: str) -> None:
        """A service failed during a turn."""
        with self._lock:
            self.errors[stage] = self.errors.get(stage, 0) + 1

    def turn(self, stages_secs: dict[str, float], *, fallback: bool) -> None:
        """One answered turn and how long each stage took."""
        with self._lock:
            self.turns += 1
            self.fallback_turns += int(fallback)
            for stage, seconds in stages_secs.items():
                self.stages.setdefault(stage, Histogram()).observe(seconds)

    def render(self) -> str:
        """The whole registry in the Prometheus text exposition format."""
        with self._lock:
            lines = [
                "# HELP jetvoice_sessions_started_total Voice sessions given a pipeline.",
                "# TYPE jetvoice_sessions_started_total counter",
                f"jetvoice_sessions_started_total {self.sessions_started}",
                "# HELP jetvoice_sessions_active Voice sessions running now.",
                "# TYPE jetvoice_sessions_active gauge",
                f"jetvoice_sessions_active {self.active_sessions}",
                "# HELP jetvoice_sessions_refused_total Offers refused, by reason.",
                "# TYPE jetvoice_sessions_refused_total counter",
                *(
                    f'jetvoice_sessions_refused_total{{reason="{r}"}} {n}'
                    for r, n in sorted(self.sessions_refused.items())
                ),
                "# HELP jetvoice_turns_total User turns answered.",
                "# TYPE jetvoice_turns_total counter",
                f"jetvoice_turns_total {self.turns}",
                "# HELP jetvoice_turn_fallbacks_total Turns ended by the silence fallback.",
                "# TYPE jetvoice_turn_fallbacks_total counter",
                f"jetvoice_turn_fallbacks_total {self.fallback_turns}",
                "# HELP jetvoice_errors_total Service failures during turns, by stage.",
                "# TYPE jetvoice_errors_total counter",
                *(
                    f'jetvoice_errors_total{{stage="{s}"}} {n}'
                    for s, n in sorted(self.errors.items())
                ),
                "# HELP jetvoice_stage_seconds Per-turn latency of each stage.",
                "# TYPE jetvoice_stage_seconds histogram",
            ]
            for stage, histogram in sorted(self.stages.items()):
                lines += histogram.lines("jetvoice_stage_seconds", f'stage="{stage}"')
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Gauge:
    """One sample read at scrape time (a gauge, or a counter kept elsewhere)."""

    name: str
    help: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    kind: Literal["gauge", "counter"] = "gauge"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_gauges(gauges: Iterable[Gauge]) -> str:
    """Samples in the text exposition format, HELP and TYPE once per metric name."""
    lines: list[str] = []
    described: set[str] = set()
    for gauge in gauges:
        if gauge.name not in described:
            described.add(gauge.name)
            lines.append(f"# HELP {gauge.name} {gauge.help}")
            lines.append(f"# TYPE {gauge.name} {gauge.kind}")
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(gauge.labels.items()))
        selector = f"{{{labels}}}" if labels else ""
        value = int(gauge.value) if float(gauge.value).is_integer() else gauge.value
        lines.append(f"{gauge.name}{selector} {value}")
    return "\n".join(lines) + "\n" if lines else ""
