"""Latency summaries: nearest-rank percentiles, as redis-benchmark and HdrHistogram report."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["percentile", "summarize"]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of an ascending sequence: the smallest value
    with at least q% of the values at or below it."""
    if not sorted_values:
        raise ValueError("percentile of nothing")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside [0, 100]")
    rank = max(1, math.ceil(round(len(sorted_values) * q / 100, 9)))
    return float(sorted_values[rank - 1])


def summarize(values: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / p999 / max / mean of unsorted values (same unit in and out)."""
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
        "p999": percentile(ordered, 99.9),
        "max": float(ordered[-1]),
        "mean": math.fsum(ordered) / len(ordered),
    }
