"""What Linux says about a process: CPU time and memory, from /proc.

CPU is user + system time of all the process's threads (`/proc/<pid>/stat`
fields 14 and 15), so a reading is the process's own, whatever else runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path

from bench.stamps import now_us

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RSS_SAMPLE_SECONDS = 0.1


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid: int, key: str = "VmRSS") -> int | None:
    """A line of /proc/<pid>/status in KiB: VmRSS (resident now) or VmHWM (peak)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return None


def load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


class ProcessSampler:
    """Every 100 ms, each process's CPU seconds and resident memory, timestamped on the
    stamps' clock: peak RSS, and CPU over any window (e.g. only while tokens flowed)."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self.cpu: dict[str, list[tuple[int, float]]] = {name: [] for name in self.pids}
        self.peak_rss_kib: dict[str, int] = {}

    def sample(self) -> None:
        moment = now_us()
        for name, pid in self.pids.items():
            used, rss = cpu_seconds(pid), memory_kib(pid)
            if used is not None:
                self.cpu[name].append((moment, used))
            if rss is not None:
                self.peak_rss_kib[name] = max(self.peak_rss_kib.get(name, 0), rss)

    def cpu_used(
        self, name: str, start_us: int | None = None, end_us: int | None = None
    ) -> float | None:
        """CPU seconds between two moments (default: the whole sampling), interpolated."""
        samples = self.cpu.get(name, [])
        if len(samples) < 2:
            return None
        start = samples[0][0] if start_us is None else start_us
        end = samples[-1][0] if end_us is None else end_us
        return _at(samples, end) - _at(samples, start)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ProcessSampler]:
        async def keep_sampling() -> None:
            while True:
                self.sample()
                await asyncio.sleep(RSS_SAMPLE_SECONDS)

        sampler = asyncio.create_task(keep_sampling())
        try:
            yield self
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            self.sample()


def _at(samples: list[tuple[int, float]], moment: int) -> float:
    """CPU seconds at `moment`, linear between the samples around it."""
    if moment <= samples[0][0]:
        return samples[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(samples):
        if t0 <= moment <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (moment - t0) / (t1 - t0)
    return samples[-1][1]
