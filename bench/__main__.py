"""`python -m bench`: the relay measured against the direct baseline; table, JSON, plot.

A full run (`make bench`) is the record: bench/results/latest.json, a
timestamped copy and latency.png. `--quick` (`make bench-quick`) writes the
quick-* files. `--only` runs are explorations, saved only with `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import floor
from bench.growth import GROWTH_OPTIONS, growth
from bench.idle import raise_open_file_limit
from bench.machine import describe_machine
from bench.procfs import load_average
from bench.profiles import FULL, GROWTH, MANY, QUICK, Workload
from bench.profiling import PySpyRecording
from bench.report import render_table, write_json
from bench.service import ROOT, RunningService, running_service
from bench.upstream_process import upstream_process
from bench.workloads import streams

RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    names = sorted({w.name for w in FULL + QUICK + MANY + GROWTH})
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one service (< 2 min)")
    parser.add_argument("--only", action="append", choices=names, help="run this workload only")
    parser.add_argument("--tokens", type=int, help="tokens per stream in stream workloads")
    parser.add_argument("--py-spy", type=Path, metavar="SVG", help="profile the service's relay")
    parser.add_argument("--py-spy-seconds", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--growth-sizes",
        help="stored turns at which growth measures, comma-separated (default 0,1000,5000,20000)",
    )
    parser.add_argument(
        "--growth-conversation-turns",
        type=int,
        help="growth: a new conversation after this many turns in one (default: never, so "
        "conversations lengthen as the store fills; set, the store grows and they do not)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="the service's WEB_CONCURRENCY (default 1)"
    )
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.only:
        pool = {w.name: w for w in QUICK + FULL + MANY + GROWTH}
        profile = [pool[name] for name in args.only]
    shared = args.quick
    limit = raise_open_file_limit()
    report: dict[str, Any] = {
        "meta": {
            **describe_machine(),
            "profile": "quick" if args.quick else "full",
            "one_service_for_all": shared,
            "workers": args.workers,
            "open_file_limit": limit,
            "load_average_start": load_average(),
            # Measured first, on the quiet machine: what no relay here can go below.
            "kernel_floor": floor.measure(connections=200, messages=20_000, spacing_us=100.0),
            "services": [],
        },
        "workloads": {},
    }
    extra: dict[str, Any] = {"tokens": args.tokens} if args.tokens else {}
    if args.growth_sizes:
        extra["sizes"] = tuple(int(size) for size in args.growth_sizes.split(","))
    if args.growth_conversation_turns:
        extra["conversation_turns"] = args.growth_conversation_turns
    py_spy = (args.py_spy, args.py_spy_seconds) if args.py_spy else None
    asyncio.run(
        _run(profile, report, shared=shared, extra=extra, py_spy=py_spy, workers=args.workers)
    )
    report["meta"]["load_average_end"] = load_average()
    print(render_table(report))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kind = "quick" if args.quick else "full"
    outputs = [args.json] if args.json else []
    if not args.only and not args.tokens and args.workers == 1:
        latest = RESULTS / ("quick-latest.json" if args.quick else "latest.json")
        outputs += [latest, RESULTS / f"{stamp}-{kind}.json"]
        from bench.plot import plot_latency  # matplotlib only when a record is written

        png = RESULTS / ("latency-quick.png" if args.quick else "latency.png")
        if plot_latency(report, png):
            print(f"plot written to {png}")
    for path in outputs:
        write_json(path, report)
        print(f"results written to {path}")
    failed = [name for name, result in report["workloads"].items() if "failed" in result]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


async def _run(
    profile: list[Workload],
    report: dict[str, Any],
    *,
    shared: bool,
    extra: dict[str, Any],
    py_spy: tuple[Path, int] | None,
    workers: int = 1,
) -> None:
    """Each workload on a fresh service (full), or all on one (quick: start-up is slow)."""
    groups = [profile] if shared else [[workload] for workload in profile]
    with upstream_process() as upstream:
        for group in groups:
            service: RunningService | None = None
            try:
                env = {k: v for workload in group for k, v in workload.service_env.items()}
                async with running_service(
                    upstream.base_url, upstream.pid, workers, env=env
                ) as service:
                    for workload in group:
                        print(f"running {workload.name} {workload.params} ...", flush=True)
                        kwargs = {
                            key: value
                            for key, value in extra.items()
                            if (key in GROWTH_OPTIONS) == (workload.run is growth)
                            and (key != "tokens" or workload.run is streams)
                        }
                        recording = None
                        if py_spy is not None and workload.run is streams:
                            recording = PySpyRecording(service.target.pid, *py_spy)
                            kwargs["before_relay"] = recording.start
                            py_spy = None  # one profile per run
                        result = await _run_one(workload, service, kwargs)
                        print(f"  {workload.name}: {result['seconds']} s", flush=True)
                        if recording is not None:
                            result["py_spy_exit"] = await recording.finish()
                        report["workloads"][workload.name] = result
            except Exception as error:  # the service did not start: say so, go on
                for workload in group:
                    report["workloads"].setdefault(
                        workload.name, {"failed": f"service: {type(error).__name__}: {error}"}
                    )
            if service is not None:
                report["meta"]["services"].append(
                    {
                        "workloads": [workload.name for workload in group],
                        "ready_s": round(service.ready_s, 2),
                        "stop_s": round(service.stop_s, 2),
                        "server_log": service.server_log,
                    }
                )


async def _run_one(
    workload: Workload, service: RunningService, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """One workload, bounded by its budget; its failure is reported, never raised."""
    began = time.perf_counter()
    try:
        async with asyncio.timeout(workload.budget_seconds):
            result = await workload(service.target, **kwargs)
    except Exception as error:  # one broken workload is reported; the rest still run
        result = {"params": workload.params, "failed": f"{type(error).__name__}: {error}"}
    result["seconds"] = round(time.perf_counter() - began, 2)
    result["load_average"] = load_average()
    return result


if __name__ == "__main__":
    sys.exit(main())
