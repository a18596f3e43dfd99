"""Added latency against concurrency: the relay's per-token p50/p99 beside the baseline's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: write a file
import matplotlib.pyplot as plt


def plot_latency(report: dict[str, Any], path: Path) -> bool:
    """One line per transport and percentile, relay and direct; False if nothing to plot."""
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for result in report["workloads"].values():
        params = result.get("params", {})
        if "relay" not in result or not params.get("rate"):
            continue  # unpaced (saturation) runs are not on this axis
        count, transport = params["streams"], params["transport"]
        for source in ("relay", "direct"):
            summary = result[source]["latency_ms"]
            for pct in ("p50", "p99"):
                if pct in summary:
                    label = (
                        f"{transport} {source}"
                        if source == "relay"
                        else f"direct (before {transport})"
                    )
                    series.setdefault((label, pct), []).append((count, max(summary[pct], 0.01)))
    if not series:
        return False
    figure, axes = plt.subplots(figsize=(8, 5))
    for (label, pct), points in sorted(series.items()):
        points.sort()
        style = "-" if pct == "p99" else "--"
        axes.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            style,
            marker="o",
            label=f"{label} {pct}",
        )
    meta = report["meta"]
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("concurrent streams (200 tokens at 50 tokens/s each)")
    axes.set_ylabel("per-token latency, ms (arrival - upstream stamp)")
    axes.set_title(
        f"Relay vs direct, {meta['nproc']} CPUs, {meta['date'][:16]}, "
        f"load {meta['load_average_start'][0]}"
    )
    axes.axhline(10, color="grey", linewidth=0.5)
    axes.axhline(50, color="grey", linewidth=0.5)
    axes.grid(True, which="both", linewidth=0.3)
    axes.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
