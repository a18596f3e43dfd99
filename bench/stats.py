"""Summaries of timing samples: what the tables and the JSON report show.

Nearest-rank percentiles, because the samples are small (tens of turns) and
an interpolated p95 of 20 values would be a number no request ever took.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Summary = dict[str, Any]


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (fraction in (0, 1])."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize_ms(seconds: Sequence[float | None]) -> Summary:
    """Durations measured in seconds, summarised in milliseconds; missing ones left out."""
    return summarize([value * 1000 for value in seconds if value is not None])


def summarize(values: Sequence[float]) -> Summary:
    """n, p50, p95, max and mean (rounded: these are for people to read)."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 0.50), 3),
        "p95": round(percentile(ordered, 0.95), 3),
        "max": round(ordered[-1], 3),
        "mean": round(sum(ordered) / len(ordered), 3),
    }


def is_summary(value: object) -> bool:
    return isinstance(value, dict) and "n" in value and ("p50" in value or value["n"] == 0)
