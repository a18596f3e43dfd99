"""The scenarios `python -m bench` knows, with their full and `--quick` sizes.

A scenario is an async function of a `Target` and integer sizes returning a
JSON-ready dict; the budget bounds its wall time, so a hung service fails one
scenario instead of stalling the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.rest import rest_list
from bench.target import Target
from bench.turns import sse_latency, ws_cancel, ws_concurrency, ws_latency, ws_throughput

Run = Callable[..., Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    run: Run
    full: dict[str, int]
    quick: dict[str, int]
    budget_seconds: float

    def sizes(self, *, quick: bool, overrides: dict[str, int]) -> dict[str, int]:
        """The sizes to run with: full or quick, then `--set` overrides (known names only)."""
        sizes = dict(self.quick if quick else self.full)
        unknown = set(overrides) - set(sizes)
        if unknown:
            raise ValueError(f"{self.name} has no size {', '.join(sorted(unknown))}")
        return sizes | overrides

    async def __call__(self, target: Target, sizes: dict[str, int]) -> dict[str, Any]:
        return await self.run(target, **sizes)


# Order matters on a shared service: with the embedded database every write
# makes later writes dearer, so the latency scenarios run first on a fresh
# database and the write-heaviest one runs last (`--isolate` removes the effect).
SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "ws_latency", ws_latency, {"turns": 30, "chunks": 50}, {"turns": 8, "chunks": 50}, 40
        ),
        Scenario(
            "sse_latency", sse_latency, {"turns": 30, "chunks": 50}, {"turns": 8, "chunks": 50}, 40
        ),
        Scenario(
            "ws_throughput",
            ws_throughput,
            {"chunks": 5000, "repeats": 3},
            {"chunks": 1000, "repeats": 1},
            40,
        ),
        Scenario("ws_cancel", ws_cancel, {"turns": 20}, {"turns": 5}, 40),
        Scenario(
            "rest_list",
            rest_list,
            {"conversations": 200, "page_size": 20, "passes": 5},
            {"conversations": 40, "page_size": 20, "passes": 2},
            40,
        ),
        Scenario(
            "ws_concurrency",
            ws_concurrency,
            {"connections": 20, "turns": 3, "chunks": 50},
            {"connections": 5, "turns": 2, "chunks": 50},
            60,
        ),
    )
}
