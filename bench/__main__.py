"""`python -m bench`: run the scenarios against the service, print a table, save JSON.

A full run of every scenario is the record and goes to bench/results/latest.json;
`--quick`, `--scenario`, `--set` and `--isolate` runs are explorations, saved only
with `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import BENCH_ENV, ROOT, RunningService, fake_upstream, running_service
from bench.report import render_table, write_json
from bench.scenarios import SCENARIOS, Scenario
from bench.target import Target

LATEST = ROOT / "bench" / "results" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run (~20 s)")
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="run only this (repeatable)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SCENARIO.SIZE=N",
        help="change one size, e.g. ws_concurrency.connections=50 (repeatable)",
    )
    parser.add_argument(
        "--isolate",
        action="store_true",
        help="a fresh service and database per scenario (slower; numbers independent of order)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    chosen = [SCENARIOS[name] for name in args.scenario or SCENARIOS]
    try:
        overrides = _overrides(args.set)
        plan = {s.name: s.sizes(quick=args.quick, overrides=overrides[s.name]) for s in chosen}
    except ValueError as error:
        parser.error(str(error))
    report: dict[str, Any] = {"meta": _machine(args.quick, args.isolate), "scenarios": {}}
    asyncio.run(_run(chosen, plan, report, isolate=args.isolate))
    report["meta"]["load_average_end"] = _load_average()
    print(render_table(report))
    record = not (args.quick or args.scenario or args.set or args.isolate)
    for path in [LATEST] * record + [args.json] * (args.json is not None):
        write_json(path, report)
        print(f"results written to {path}")
    failed = [name for name, result in report["scenarios"].items() if "failed" in result]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _overrides(settings: list[str]) -> defaultdict[str, dict[str, int]]:
    overrides: defaultdict[str, dict[str, int]] = defaultdict(dict)
    for setting in settings:
        key, _, value = setting.partition("=")
        scenario, _, size = key.partition(".")
        if scenario not in SCENARIOS or not size or not value.isdigit() or int(value) < 1:
            raise ValueError(f"--set {setting!r}: expected SCENARIO.SIZE=N with N >= 1")
        overrides[scenario][size] = int(value)
    return overrides


async def _run(
    chosen: list[Scenario],
    plan: dict[str, dict[str, int]],
    report: dict[str, Any],
    *,
    isolate: bool,
) -> None:
    """All scenarios on one service (the default: one start-up, several seconds of
    imports, paid once), or each on a fresh service and database (`--isolate`)."""
    groups = [[scenario] for scenario in chosen] if isolate else [chosen]
    with fake_upstream() as fake:
        for group in groups:
            service: RunningService | None = None
            try:
                async with running_service(fake) as service:
                    for scenario in group:
                        print(f"running {scenario.name} {plan[scenario.name]} ...", flush=True)
                        result = await _run_one(scenario, plan[scenario.name], service.target)
                        report["scenarios"][scenario.name] = result
            except Exception as error:  # the service did not start: say so, go on
                for scenario in group:
                    report["scenarios"].setdefault(
                        scenario.name, {"failed": f"service: {type(error).__name__}: {error}"}
                    )
            if service is not None:
                report["meta"]["services"].append(
                    {
                        "scenarios": [scenario.name for scenario in group],
                        "ready_s": round(service.ready_s, 2),
                        "stop_s": round(service.stop_s, 2),
                        "server_log": service.server_log,
                    }
                )


async def _run_one(scenario: Scenario, sizes: dict[str, int], target: Target) -> dict[str, Any]:
    """One scenario, bounded by its budget; its failure is reported, never raised."""
    began, client_cpu_before = time.perf_counter(), time.process_time()
    cpu_before = target.cpu_seconds()
    try:
        async with asyncio.timeout(scenario.budget_seconds):
            result = {"params": sizes, **await scenario(target, sizes)}
    except Exception as error:  # one broken scenario is reported; the rest still run
        result = {"params": sizes, "failed": f"{type(error).__name__}: {error}"}
    cpu_after = target.cpu_seconds()
    if cpu_before is not None and cpu_after is not None:
        result["server_cpu_s"] = round(cpu_after - cpu_before, 2)
        if result.get("turns"):
            per_turn = (cpu_after - cpu_before) / result["turns"] * 1000
            result["server_cpu_ms_per_turn"] = round(per_turn, 1)
    # The bench process (client and fake upstream): if this nears `seconds`, the
    # client, not the service, was the bottleneck.
    result["client_cpu_s"] = round(time.process_time() - client_cpu_before, 2)
    result["seconds"] = round(time.perf_counter() - began, 2)
    return result


def _machine(quick: bool, isolate: bool) -> dict[str, Any]:
    """Enough about where the numbers came from to compare two runs honestly."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "isolated": isolate,
        "embedded_database": not os.environ.get("MONGODB_URI"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "server_changed_since_commit": bool(_git("status", "--porcelain", "--", "server")),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "load_average_start": _load_average(),
        "service_env": BENCH_ENV,
        "services": [],
    }


def _load_average() -> list[float]:
    """1, 5 and 15 minute load: a busy machine explains a slow run."""
    return [round(load, 2) for load in os.getloadavg()]


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
