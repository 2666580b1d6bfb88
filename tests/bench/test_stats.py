"""Percentiles, latency summaries and medians of the bench."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.bench.stats import latency_summary, median, percentile, rate


def test_percentile_interpolates_between_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0.0) == 10.0
    assert percentile(values, 1.0) == 40.0
    assert percentile(values, 0.5) == 25.0
    assert percentile(values, 0.25) == pytest.approx(17.5)


def test_percentile_of_one_value() -> None:
    assert percentile([7.0], 0.99) == 7.0


def test_percentile_rejects_empty_sample() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 0.5)


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_percentile_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="invalid fraction"):
        percentile([1.0, 2.0], fraction)


@given(
    st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=200),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_percentile_bounded_and_monotonic(
    values: list[int], first: float, second: float
) -> None:
    ordered = sorted(values)
    low, high = sorted((first, second))
    low_value = percentile(ordered, low)
    high_value = percentile(ordered, high)
    assert ordered[0] <= low_value <= ordered[-1]
    # Interpolation may round by one unit in the last place.
    assert low_value <= high_value + 1e-6 * max(1, abs(high_value))


def test_latency_summary_in_milliseconds() -> None:
    summary = latency_summary([1_000_000, 2_000_000, 3_000_000])
    assert summary["count"] == 3
    assert summary["p50_ms"] == 2.0
    assert summary["max_ms"] == 3.0
    assert summary["mean_ms"] == 2.0
    assert summary["p99_ms"] == pytest.approx(2.98)


def test_latency_summary_of_empty_sample() -> None:
    summary = latency_summary([])
    assert summary["count"] == 0
    assert summary["p99_ms"] is None
    assert summary["max_ms"] is None


def test_median_skips_missing_values() -> None:
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([None, None]) is None


def test_rate_of_empty_interval() -> None:
    assert rate(10, 0) == 0.0
    assert rate(10, 2) == 5.0
