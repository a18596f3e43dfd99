"""What a stretch of load cost each process: CPU, peak memory, database writes, wall time.

The load generator (this process) is measured too: if its CPU nears the
wall time, the generator, not the service, set the pace, and the figures
say so instead of blaming the service.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bench.database import opcounters, writes_between
from bench.procfs import ProcessSampler, load_average
from bench.redis_stats import commands_between, redis_stats
from bench.target import Target

SATURATED_SHARE = 0.9  # a process busy this share of the wall time had no slack left


@dataclass
class Measurement:
    seconds: float = 0.0
    sampler: ProcessSampler = field(default_factory=lambda: ProcessSampler({}))
    ops: dict[str, int] | None = None
    writes: int | None = None
    redis_commands: dict[str, int] | None = None  # with REDIS_URL: commands, script calls

    def cpu_share(self, name: str) -> float | None:
        """CPU seconds per wall second (1.0 = one core fully busy)."""
        used = self.sampler.cpu_used(name)
        return None if used is None or self.seconds <= 0 else round(used / self.seconds, 2)

    def cpu_us_per(
        self, name: str, count: int, window: tuple[int, int] | None = None
    ) -> float | None:
        """CPU µs of a process per item, over the whole phase or a window of it; `service`
        includes its workers (`service worker 1`...) when WEB_CONCURRENCY > 1."""
        parts = [
            self.sampler.cpu_used(each, *(window or (None, None)))
            for each in self.sampler.pids
            if each == name or each.startswith(f"{name} worker ")
        ]
        used = None if not parts or None in parts else sum(p for p in parts if p is not None)
        return None if used is None or count <= 0 else round(used / count * 1e6, 1)

    def to_json(self) -> dict[str, Any]:
        names = sorted(self.sampler.pids)
        shares = {name: self.cpu_share(name) for name in names}
        return {
            "seconds": round(self.seconds, 2),
            "cpu_s": {name: _rounded(self.sampler.cpu_used(name)) for name in names},
            "cpu_share": shares,
            "saturated": sorted(k for k, v in shares.items() if v and v >= SATURATED_SHARE),
            "peak_rss_kib": self.sampler.peak_rss_kib,
            "db_ops": self.ops,
            "db_writes": self.writes,
            "redis_commands": self.redis_commands,
            "load_average": load_average(),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@contextlib.asynccontextmanager
async def measuring(target: Target) -> AsyncIterator[Measurement]:
    redis_before = await redis_stats()
    redis_pid = {"redis": redis_before["pid"]} if redis_before else {}
    measurement = Measurement(
        sampler=ProcessSampler({**target.processes(), **redis_pid, "generator": os.getpid()})
    )
    ops_before = await opcounters(target.database_uri)
    began = time.perf_counter()
    async with measurement.sampler.running():
        yield measurement
    measurement.seconds = time.perf_counter() - began
    ops_after = await opcounters(target.database_uri)
    measurement.writes = writes_between(ops_before, ops_after)
    measurement.redis_commands = commands_between(redis_before, await redis_stats())
    if ops_before is not None and ops_after is not None:
        measurement.ops = {k: ops_after[k] - ops_before.get(k, 0) for k in ops_after}
