"""The workloads `python -m bench` runs, full and `--quick`, with their time budgets.

A budget bounds a workload's wall time, so a hung service fails one workload
instead of stalling the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bench.fairness import fairness
from bench.growth import SERVICE_ENV as GROWTH_ENV
from bench.growth import growth
from bench.idle import idle
from bench.rest import rest_list
from bench.target import Target
from bench.workloads import burst, cancel_under_load, db_writes, streams

Run = Callable[..., Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    run: Run
    params: dict[str, Any] = field(default_factory=dict)
    budget_seconds: float = 240.0
    service_env: dict[str, str] = field(default_factory=dict)  # settings its service runs with

    def renamed(self, name: str) -> Workload:
        return replace(self, name=name)

    async def __call__(self, target: Target, **extra: Any) -> dict[str, Any]:
        return await self.run(target, **self.params, **extra)


def _streams(transport: str, count: int, **params: Any) -> Workload:
    return Workload(
        f"{transport}-{count}", streams, {"transport": transport, "streams": count, **params}
    )


def _profile(
    stream_counts: tuple[tuple[str, int], ...],
    *,
    unpaced: tuple[int, int],
    burst_turns: int,
    cancel: tuple[int, int],
    idle_counts: tuple[int, ...],
    write_lengths: tuple[int, ...],
    conversations: int,
) -> list[Workload]:
    """Paced streams at each (transport, concurrency), then the other workloads."""
    saturation_streams, saturation_tokens = unpaced
    load, cancels = cancel
    return [
        *(_streams(transport, count) for transport, count in stream_counts),
        _streams("ws", saturation_streams, tokens=saturation_tokens, rate=0.0).renamed(
            f"saturation-ws-{saturation_streams}"
        ),
        Workload(f"burst-{burst_turns}", burst, {"turns": burst_turns}),
        Workload(f"cancel-{load}", cancel_under_load, {"load": load, "cancels": cancels}),
        *(
            Workload(f"idle-{n // 1000}k", idle, {"connections": n}, budget_seconds=400)
            for n in idle_counts
        ),
        Workload("fairness", fairness),
        Workload("db-writes", db_writes, {"turns": 10, "lengths": write_lengths}),
        Workload("rest-list", rest_list, {"conversations": conversations, "passes": 3}),
    ]


FULL = _profile(
    tuple((transport, n) for n in (50, 200, 500, 1000) for transport in ("ws", "sse")),
    unpaced=(50, 2000),
    burst_turns=200,
    cancel=(200, 50),
    idle_counts=(1000, 10_000),
    write_lengths=(20, 200, 2000),
    conversations=200,
)
# Beyond the full run, for several workers with Redis (issue 12): `--only ws-2000 --workers 2`.
MANY = [_streams("ws", 2000), _streams("sse", 2000)]
# Beyond the full run too: it fills the store to 20,000 turns (`--only growth`, tens of minutes).
GROWTH = [Workload("growth", growth, budget_seconds=4 * 3600, service_env=GROWTH_ENV)]
QUICK = _profile(
    (("ws", 50), ("sse", 50), ("ws", 200)),
    unpaced=(20, 1000),
    burst_turns=50,
    cancel=(50, 10),
    idle_counts=(1000,),
    write_lengths=(20, 2000),
    conversations=40,
)
