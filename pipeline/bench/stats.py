"""Order statistics for latency samples: min, percentiles and max, never a mean alone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100), numpy's default linear interpolation between order
    statistics.

    Raises:
        ValueError: no values, a non-finite value, or `q` outside [0, 100] (numpy would
        return nan or raise something less telling).
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    samples = np.asarray(values, dtype=np.float64)
    if not np.isfinite(samples).all():
        raise ValueError("percentile of a non-finite value")
    return float(np.percentile(samples, q))


@dataclass(frozen=True)
class Summary:
    """min / p50 / p95 / max (milliseconds, as given) of `n` samples."""

    n: int
    min: float
    p50: float
    p95: float
    max: float

    def as_dict(self) -> dict[str, float | int]:
        """JSON form, values rounded to 0.1."""
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize(values: Iterable[float | None]) -> Summary | None:
    """Summary of the values that are present (None is skipped); None when none are."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    return Summary(
        n=len(present),
        min=min(present),
        p50=percentile(present, 50.0),
        p95=percentile(present, 95.0),
        max=max(present),
    )
