"""The run's record: a table for the terminal and a JSON file for the repository."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench.stats import is_summary

NAME_WIDTH = 30


def render_table(report: dict[str, Any]) -> str:
    """One block per scenario: distributions as n/p50/p95/max, the rest as values."""
    meta = report["meta"]
    lines = [
        f"{meta['date']}  {meta['cpus_usable']} CPUs  load {meta['load_average_start']}"
        f"  {'embedded database' if meta['embedded_database'] else 'MONGODB_URI'}",
        f"{'':<{NAME_WIDTH}} {'n':>6} {'p50':>10} {'p95':>10} {'max':>10}",
    ]
    for name, result in report["scenarios"].items():
        params = ", ".join(f"{k}={v}" for k, v in result.get("params", {}).items())
        lines.append(f"{name} ({params}) in {result.get('seconds', '?')} s")
        for key, value in result.items():
            if key in {"params", "seconds"}:
                continue
            label = f"  {key}"
            if is_summary(value):
                cells = [value.get(field, "-") for field in ("p50", "p95", "max")]
                row = " ".join(f"{cell:>10}" for cell in cells)
                lines.append(f"{label:<{NAME_WIDTH}} {value['n']:>6} {row}")
            elif isinstance(value, dict):
                lines.append(f"{label:<{NAME_WIDTH}} {_inline(value)}")
            else:
                lines.append(f"{label:<{NAME_WIDTH}} {value}")
    for service in meta["services"]:
        server_log = service["server_log"]
        counts = {k: v for k, v in server_log.items() if k not in {"samples", "first_traceback"}}
        lines.append(
            f"service for {', '.join(service['scenarios'])}: ready in {service['ready_s']} s, "
            f"stopped in {service['stop_s']} s; log: {_inline(counts)}"
        )
        lines.extend(f"    {sample}" for sample in server_log.get("samples", []))
    return "\n".join(lines)


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write through a temporary file, so a crash never leaves half a report behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    os.replace(scratch, path)


def _inline(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "-"
