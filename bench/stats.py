"""Summaries of samples: what the table and the JSON report show.

Nearest-rank percentiles: every figure is a value some token or request
really had, never an interpolation between two.
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


def summarize_us(micros: Sequence[int | None]) -> Summary:
    """Durations measured in microseconds, summarised in milliseconds."""
    return summarize([value / 1000 for value in micros if value is not None])


def summarize(values: Sequence[float]) -> Summary:
    """n, p50, p99, max and mean (rounded: these are for people to read)."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": round(percentile(ordered, 0.50), 3),
        "p99": round(percentile(ordered, 0.99), 3),
        "max": round(ordered[-1], 3),
        "mean": round(sum(ordered) / len(ordered), 3),
    }


def difference(relay: Summary, direct: Summary) -> Summary:
    """What the relay adds: each figure of the relay's distribution minus the baseline's."""
    return {
        key: round(relay[key] - direct[key], 3)
        for key in ("p50", "p99", "max", "mean")
        if key in relay and key in direct
    }


def is_summary(value: object) -> bool:
    return isinstance(value, dict) and "n" in value and ("p50" in value or value["n"] == 0)
