"""Percentiles, latency summaries and medians of repeated runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

__all__ = ["latency_summary", "median", "percentile", "rate"]

LATENCY_FRACTIONS = {"p50": 0.5, "p99": 0.99, "p999": 0.999}
"""Percentiles reported for every latency sample, by JSON field prefix."""


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the ``fraction`` quantile of ascending ``sorted_values``.

    The quantile is interpolated linearly between the two nearest ranks, the
    default method of numpy and of ``statistics.quantiles(method="inclusive")``:
    rank ``fraction * (n - 1)`` counted from 0. Raises ValueError for an empty
    sample or a fraction outside [0, 1].
    """
    if not sorted_values:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"invalid fraction {fraction}: expected 0 to 1")
    rank = fraction * (len(sorted_values) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    below, above = sorted_values[low], sorted_values[high]
    value = below + (above - below) * (rank - low)
    # Rounding must not carry the result past its two neighbours.
    return min(max(value, below), above)


def latency_summary(latencies_ns: Iterable[int]) -> dict[str, float | int | None]:
    """Summarise latencies given in nanoseconds as milliseconds.

    Returns ``count``, ``p50_ms``, ``p99_ms``, ``p999_ms``, ``max_ms`` and
    ``mean_ms``; the millisecond fields are None for an empty sample. A
    percentile is only as precise as the sample is large: p99.9 of fewer
    than 1,000 values is close to the maximum.
    """
    values = sorted(latencies_ns)
    summary: dict[str, float | int | None] = {"count": len(values)}
    for name, fraction in LATENCY_FRACTIONS.items():
        summary[f"{name}_ms"] = (
            round(percentile(values, fraction) / 1e6, 4) if values else None
        )
    summary["max_ms"] = round(values[-1] / 1e6, 4) if values else None
    summary["mean_ms"] = round(statistics.fmean(values) / 1e6, 4) if values else None
    return summary


def median(values: Iterable[float | None]) -> float | None:
    """Return the median of the values that are not None, or None if none are."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    return float(statistics.median(present))


def rate(count: float, seconds: float) -> float:
    """Return ``count / seconds``, or 0 for an empty interval."""
    return count / seconds if seconds > 0 else 0.0
