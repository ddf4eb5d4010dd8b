"""Percentiles and summaries of latency samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.bench.stats import Summary, percentile, summarize


def test_percentiles_of_a_known_sample() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 50) == 30.0
    assert percentile(values, 100) == 50.0
    assert percentile(values, 95) == pytest.approx(48.0)
    assert percentile([4.0, 1.0], 50) == 2.5  # order does not matter, interpolates


def test_single_value() -> None:
    assert percentile([7.0], 95) == 7.0


@given(
    st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=50),
    st.floats(min_value=0, max_value=100),
)
def test_matches_numpy_linear(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-6)


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 101), ([math.nan], 50)])
def test_rejects_bad_input(values: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)


def test_summarize_skips_missing_values() -> None:
    summary = summarize([300.0, None, 100.0, 200.0])
    assert summary is not None
    assert (summary.n, summary.min, summary.p50, summary.max) == (3, 100.0, 200.0, 300.0)
    assert summary.p95 == pytest.approx(290.0)


def test_summarize_nothing_is_none() -> None:
    assert summarize([None, None]) is None
    assert summarize([]) is None


def test_summary_json_is_rounded() -> None:
    assert Summary(1, 1.234, 1.25, 1.26, 1.27).as_dict() == {
        "n": 1,
        "min": 1.2,
        "p50": 1.2,
        "p95": 1.3,
        "max": 1.3,
    }
