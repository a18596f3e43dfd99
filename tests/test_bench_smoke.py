"""The benchmark still measures what it says: one scenario, a few turns, in-process.

Only behaviour is asserted (every turn ran to `turn.done` with its text
intact, the report has its keys); speed is the benchmark's business, not a
test's, because a timing threshold fails on a busy machine and teaches
people to ignore red builds.
"""

from __future__ import annotations

import os

from bench.target import Target
from bench.turns import ws_latency
from tests.conftest import JWT_SECRET, Service

TURNS = 3
DISTRIBUTIONS = ("started_ms", "first_delta_ms", "done_ms")


async def test_ws_latency_scenario_reports_every_turn(service: Service) -> None:
    base_url = str(service.http.make_url("/")).rstrip("/")
    target = Target(base_url, JWT_SECRET, service.fake, os.getpid())

    result = await ws_latency(target, turns=TURNS, chunks=5)

    assert result["params"] == {"turns": TURNS, "chunks": 5}
    assert result["turns"] == result["completed"] == result["text_intact"] == TURNS
    assert result["outcomes"] == {"turn.done": TURNS}
    for name in DISTRIBUTIONS:
        summary = result[name]
        assert summary["n"] == TURNS, (name, summary)
        assert 0 < summary["p50"] <= summary["p95"] <= summary["max"], (name, summary)
    assert len(service.fake.requests) == TURNS + 1  # the unmeasured warm-up turn, then ours
