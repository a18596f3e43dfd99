"""The run's record: a table for the terminal and a JSON file for the repository."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STREAM_COLUMNS = (
    "workload",
    "relay p50/p99/max",
    "direct p50/p99/max",
    "added p50/p99",
    "+ttft p50",
    "svc µs/tok",
    "db µs/tok",
    "tok/s (offered)",
    "gen cpu",
    "svc MiB",
    "writes/turn",
    "complete",
)


def render_table(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"{meta['date']}  {meta['nproc']} CPUs ({meta['cpu']}), {meta['ram_gib']} GiB  "
        f"commit {meta['commit']}  load {meta['load_average_start']} → "
        f"{meta.get('load_average_end')}  "
        f"{'embedded database' if meta['embedded_database'] else 'MONGODB_URI'}",
        "per-token latency in ms (relay and direct: arrival - stamp); added = relay - direct",
    ]
    floor = meta.get("kernel_floor")
    if floor:
        lines.append(
            f"kernel floor per relayed token (python -m bench.floor): "
            f"{floor['floor_us_per_relayed_token']} µs = one loopback send "
            f"{floor['send_cpu_us_per_message']} + one epoll-woken recv "
            f"{floor['recv_cpu_us_per_message']}; compare svc µs/tok"
        )
    rows = [list(STREAM_COLUMNS)]
    others: list[str] = []
    for name, result in report["workloads"].items():
        if "failed" in result:
            others.append(f"{name}: FAILED {result['failed']}")
        elif "relay" in result:
            rows.append(_stream_row(name, result))
        else:
            others.append(_other_line(name, result))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(STREAM_COLUMNS))]
    lines += [
        "  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines += others
    for service in meta["services"]:
        log = service["server_log"]
        counts = {k: v for k, v in log.items() if k not in {"samples", "first_traceback"}}
        lines.append(
            f"service for {', '.join(service['workloads'])}: ready in {service['ready_s']} s; "
            f"log: {_inline(counts)}"
        )
        lines.extend(f"    {sample}" for sample in log.get("samples", [])[:3])
    return "\n".join(lines)


def _stream_row(name: str, result: dict[str, Any]) -> list[Any]:
    relay, direct = result["relay"], result["direct"]
    added, ttft = result["added_latency_ms"], result["added_ttft_ms"]
    offered = result.get("offered_tokens_per_s")
    rss = result.get("service_peak_rss_kib")
    return [
        name,
        _triple(relay["latency_ms"]),
        _triple(direct["latency_ms"]),
        f"{added.get('p50', '-')}/{added.get('p99', '-')}",
        ttft.get("p50", "-"),
        result["service_cpu_us_per_token"],
        result["database_cpu_us_per_token"],
        f"{relay['tokens_per_s']} ({offered or 'unpaced'})",
        result["generator_cpu_share"],
        round(rss / 1024) if rss else "-",
        result["db_writes_per_turn"],
        f"{relay['complete']}/{relay['streams']}",
    ]


def _triple(summary: dict[str, Any]) -> str:
    if not summary.get("n"):
        return "-"
    return f"{_short(summary['p50'])}/{_short(summary['p99'])}/{_short(summary['max'])}"


def _short(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _other_line(name: str, result: dict[str, Any]) -> str:
    if "cancel_to_cancelled_ms" in result:
        return (
            f"{name}: cancel→turn.cancelled {_pp(result['cancel_to_cancelled_ms'])}, "
            f"cancel→upstream closed {_pp(result['cancel_to_upstream_closed_ms'])}, "
            f"left open {result['upstream_left_open']}, deltas after turn.cancelled "
            f"{result['deltas_after_turn_cancelled']}, upstream tokens after cancel "
            f"{_pp(result['upstream_tokens_after_cancel'], 'p50/p99')}, cancelled "
            f"{result['cancelled']}/{result['params']['cancels']}, load latency "
            f"{_pp(result['load_latency_ms'])}"
        )
    if "victim_ttft_ms" in result:
        ttft = result["victim_ttft_ms"]
        return (
            f"{name}: victim ttft idle {_pp(ttft['idle'])}, flooded {_pp(ttft['flooded'])}, "
            f"p50 ratio {result['victim_ttft_p50_ratio']} (target <= 2); flooder: "
            f"{result['flood_sockets_open']} sockets, {_inline(result['flood_answers'])}; "
            f"cpu flooded: service {result['service_cpu_share_flooded']}, "
            f"database {result['database_cpu_share_flooded']}"
        )
    if "turn_started_ms" in result:
        return (
            f"{name}: turn.started {_pp(result['turn_started_ms'])}, ttft "
            f"{_pp(result['ttft_ms'])}, outcomes {_inline(result['outcomes'])}, writes/turn "
            f"{result['db_writes_per_turn']}"
        )
    if "rss_per_connection_kib" in result:
        return (
            f"{name}: {result['connected']} connected in {result['connect_s']} s, "
            f"{result['rss_per_connection_kib']} KiB RSS per connection (service "
            f"{result['service_rss_before_kib']} → {result['service_rss_after_kib']} KiB), "
            f"database growth {result['database_rss_growth_kib']} KiB, "
            f"ping {_pp(result['ping_ms'])}"
        )
    if "unpaced" in result:
        parts = [
            f"{label} {length} tok: {row['writes_per_turn']}"
            for label in ("unpaced", "paced_50_per_s")
            for length, row in result[label].items()
        ]
        return f"{name}: DB writes per turn: {'; '.join(parts)}"
    if "levels" in result:  # growth: the table, one row per size
        return f"{name} (ms; p50 unless p50/p99):\n{result['table']}"
    if "page_ms" in result:
        return (
            f"{name}: page {_pp(result['page_ms'])}, first/last page p50 "
            f"{result['first_page_ms'].get('p50')}/{result['last_page_ms'].get('p50')} ms, "
            f"complete passes {result['complete_passes']}"
        )
    return f"{name}: {_inline(result)}"


def _pp(summary: dict[str, Any], unit: str = "ms p50/p99") -> str:
    if not summary.get("n"):
        return "n=0"
    return f"{summary['p50']}/{summary['p99']} {unit} (n={summary['n']})"


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write through a temporary file, so a crash never leaves half a report behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(scratch, path)


def _inline(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "-"
