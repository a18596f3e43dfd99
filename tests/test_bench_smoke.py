"""The benchmark still measures what it says: its workloads, tiny, against an in-process service.

Only behaviour is asserted (every stream ran to its end with every stamped
token, the report holds real numbers where numbers belong); speed is the
benchmark's business, not a test's, because a timing threshold fails on a
busy machine and teaches people to ignore red builds.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from bench.fairness import fairness
from bench.growth import SERVICE_ENV as GROWTH_ENV
from bench.growth import growth
from bench.target import Target
from bench.upstream import StampingUpstream
from bench.workloads import burst, cancel_under_load, streams
from tests.conftest import JWT_SECRET, Service

STREAMS, TOKENS = 3, 10


@pytest.fixture
async def target(service: Service) -> AsyncIterator[Target]:
    upstream = StampingUpstream()
    await upstream.start()
    await service.reconfigure(ANTHROPIC_BASE_URL=upstream.base_url, CHAT_TITLES="off")
    base_url = str(service.http.make_url("/")).rstrip("/")
    yield Target(base_url, JWT_SECRET, upstream.base_url, os.getpid(), service.env["MONGODB_URI"])
    await upstream.close()


def _is_distribution(summary: dict[str, Any], n: int) -> bool:
    return summary["n"] == n and all(isinstance(summary[k], float) for k in ("p50", "p99", "max"))


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_streams_report_relay_and_baseline(target: Target, transport: Any) -> None:
    result = await streams(target, transport=transport, streams=STREAMS, tokens=TOKENS, rate=200)

    for source in ("relay", "direct"):
        seen = result[source]
        assert seen["outcomes"] == {"done": STREAMS}, (source, seen["outcomes"])
        assert seen["complete"] == STREAMS and seen["tokens"] == STREAMS * TOKENS
        assert _is_distribution(seen["latency_ms"], STREAMS * TOKENS), seen["latency_ms"]
        assert _is_distribution(seen["ttft_ms"], STREAMS), seen["ttft_ms"]
    assert set(result["added_latency_ms"]) == {"p50", "p99", "max", "mean"}
    assert result["relay"]["turn_started_ms"]["n"] == STREAMS
    assert result["service_cpu_us_per_token_with_turn_costs"] is not None
    assert result["db_writes_per_turn"] > 0  # counted by the database's serverStatus


async def test_cancel_reports_the_upstream_close(target: Target) -> None:
    result = await cancel_under_load(target, load=2, cancels=2, tokens=TOKENS, rate=100)

    assert result["cancelled"] == 2, result["outcomes"]
    assert result["outcomes"]["done"] == 2
    assert result["cancel_to_cancelled_ms"]["n"] == 2
    assert result["cancel_to_upstream_closed_ms"]["n"] == 2
    assert result["upstream_left_open"] == 0
    assert result["deltas_after_turn_cancelled"] == 0


async def test_burst_reports_turn_started(target: Target) -> None:
    result = await burst(target, turns=STREAMS, tokens=2)

    assert result["outcomes"] == {"done": STREAMS}
    assert _is_distribution(result["turn_started_ms"], STREAMS)


async def test_fairness_reports_the_victim_idle_and_flooded(
    target: Target, service: Service
) -> None:
    await service.reconfigure(MAX_TURNS_PER_USER="1", TURNS_PER_MINUTE="3")
    target = replace(target, base_url=str(service.http.make_url("/")).rstrip("/"))
    result = await fairness(target, victim_turns=3, victim_tokens=5, flood_sockets=3, warm_up=0.3)

    assert result["victim_outcomes"] == {"idle": {"done": 3}, "flooded": {"done": 3}}
    assert _is_distribution(result["victim_ttft_ms"]["idle"], 3)
    assert _is_distribution(result["victim_ttft_ms"]["flooded"], 3)
    assert isinstance(result["victim_ttft_p50_ratio"], float)
    assert result["flood_sockets_open"] == 3
    refused = {code for code in result["flood_answers"] if code.startswith("error:")}
    assert refused & {"error:too_many_turns", "error:rate_limited"}, result["flood_answers"]


async def test_floor_reports_the_kernels_cost_of_a_token() -> None:
    """`python -m bench.floor`, as the README runs it, tiny: a cost for each side, every read."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bench.floor", "--connections", "4", "--messages", "400", "--spacing-us", "50"),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0
    result = orjson.loads(out)
    assert result["send_cpu_us_per_message"] > 0 and result["recv_cpu_us_per_message"] > 0
    assert result["floor_us_per_relayed_token"] == pytest.approx(
        result["send_cpu_us_per_message"] + result["recv_cpu_us_per_message"], abs=0.02
    )
    assert result["reads_per_message"] <= 1.0  # every message read, none twice


async def test_growth_measures_each_size_on_the_users_own_data(
    target: Target, service: Service
) -> None:
    await service.reconfigure(**GROWTH_ENV)  # restarted: on a port of its own
    base_url = str(service.http.make_url("/")).rstrip("/")
    result = await growth(replace(target, base_url=base_url), sizes=(0, 12), probes=2)

    # Filled up to each size (the first level's probe turns count), probed after.
    assert [level["stored_turns"] for level in result["levels"]] == [0, 12]
    assert [level["filled"] for level in result["levels"]] == [0, 10]
    for level in result["levels"]:
        for key in ("turn_started_ms", "whole_turn_ms", "list_ms", "search_ms", "resume_ms"):
            assert _is_distribution(level[key], 2), (key, level[key])
    # Stored as the table says: every turn's question and answer, nothing else.
    assert await service.db.messages.count_documents({}) == 2 * (12 + 2)
    assert result["table"].splitlines()[0].split()[:2] == ["turns", "started"]
