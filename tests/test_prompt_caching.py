"""Prompt caching, usage stored whole, and what answers cost: as the API bills, measured.

The fake upstream keeps a prompt cache by Anthropic's rules (`tests/fake_cache.py`),
so a cache read is reported only when the service's breakpoints really let the
second request reuse what the first one wrote.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from server.config import load_settings
from server.prices import load_prices
from server.startup_errors import ConfigError
from tests.conftest import Service
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.live_server import run_cli, server_env
from tests.test_startup_errors import one_line

# About 2,000 tokens: past the 1,024-token minimum a prefix needs to be cached.
SYSTEM_PROMPT = "You are a careful assistant for a shipping company. " * 150
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


async def two_turns(service: Service) -> list[dict[str, Any]]:
    """Two questions in one conversation with a long system prompt; their `turn.done`s."""
    created = await service.http.post(
        "/api/conversations", json={"system_prompt": SYSTEM_PROMPT}, headers=service.headers()
    )
    conversation_id = (await created.json())["id"]
    ws = await service.ws()
    dones = []
    for question in ("Where is my parcel?", "And when will it arrive?"):
        frames = await ws.turn(question, conversation_id=conversation_id)
        assert frames[-1]["type"] == "turn.done", frames[-1]
        dones.append(frames[-1])
    await ws.close()
    return dones


def marks(body: dict[str, Any]) -> int:
    return json.dumps(body).count('"cache_control"')


async def test_the_second_turn_reads_what_the_first_wrote_and_usage_adds_up(
    env: dict[str, str], service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(COST_PER_USER_PER_DAY_USD="5")
    first, second = await two_turns(service)

    # Breakpoints on the system prompt and the conversation's tail, never more than four.
    bodies = [request.body for request in fake.requests]
    assert [marks(body) for body in bodies] == [2, 3]
    assert bodies[1]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert bodies[1]["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}

    # The first turn writes the prefix, the second reads it and writes only what is new.
    assert first["usage"]["cache_creation_input_tokens"] > 1000
    assert first["usage"]["cache_read_input_tokens"] == 0
    assert (
        second["usage"]["cache_read_input_tokens"] >= first["usage"]["cache_creation_input_tokens"]
    )
    assert 0 < second["usage"]["cache_creation_input_tokens"] < 200
    for done in (first, second):
        usage = done["usage"]
        assert all(isinstance(usage[name], int) for name in TOKEN_FIELDS)
        assert usage["cost_usd"] > 0
        assert done["message"]["usage"] == usage
    # Sonnet's prices (the fallback for an unknown model): reads at a tenth of input.
    read = second["usage"]
    expected = (
        read["input_tokens"] * 3
        + read["output_tokens"] * 15
        + read["cache_creation_input_tokens"] * 3.75
        + read["cache_read_input_tokens"] * 0.3
    ) / 1e6
    assert read["cost_usd"] == pytest.approx(expected)

    reply = await service.http.get("/api/usage?days=1", headers=service.headers())
    report = await reply.json()
    assert len(report["days"]) == 1
    for name in (*TOKEN_FIELDS, "cost_usd"):
        both = first["usage"][name] + second["usage"][name]
        assert report["totals"][name] == pytest.approx(both)
        assert report["days"][0][name] == pytest.approx(both)

    listed = await service.http.get("/api/conversations", headers=service.headers())
    totals = (await listed.json())["items"][0]["usage"]
    assert totals["cache_read_input_tokens"] == report["totals"]["cache_read_input_tokens"]
    assert totals["cost_usd"] == pytest.approx(report["totals"]["cost_usd"])

    me = await (await service.http.get("/api/me", headers=service.headers())).json()
    assert me["cost_budget"]["cost_usd_per_day"] == 5
    assert me["cost_budget"]["cost_usd_used"] == pytest.approx(report["totals"]["cost_usd"])
    assert "budget" not in me  # no token budget set

    other = await service.http.get("/api/usage?days=1", headers=service.headers("bob"))
    assert (await other.json()) == {
        "days": [],
        "totals": dict.fromkeys((*TOKEN_FIELDS, "web_search_requests", "cost_usd"), 0),
    }
    too_many = await service.http.get("/api/usage?days=91", headers=service.headers())
    assert too_many.status == 422


async def test_prompt_cache_off_sends_no_cache_control(
    env: dict[str, str], service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(PROMPT_CACHE="off")
    first, second = await two_turns(service)

    assert len(fake.requests) == 2
    assert all(marks(request.body) == 0 for request in fake.requests)
    assert all(marks(request.body) == 0 for request in fake.title_requests)
    assert second["usage"]["cache_read_input_tokens"] == 0
    assert second["usage"]["input_tokens"] > first["usage"]["input_tokens"] > 1000


async def test_a_one_hour_ttl_marks_every_breakpoint_so(
    env: dict[str, str], service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(PROMPT_CACHE_TTL="1h")
    await two_turns(service)
    body = fake.requests[1].body
    assert body["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert marks(body) == json.dumps(body).count('"ttl": "1h"')


@pytest.mark.parametrize(
    ("prices", "named"),
    [
        ({"claude-x": {"input": 3, "output": 15, "cache_write": 3.75}}, "cache_read: missing"),
        ({"claude-x": {"input": -1, "output": 1, "cache_write": 1, "cache_read": 1}}, "input=-1"),
        ({"claude-x": {"input": "3", "output": 1, "cache_write": 1, "cache_read": 1}}, "input='3'"),
    ],
)
def test_a_bad_price_names_the_model_and_the_price(
    tmp_path: Path, prices: dict[str, Any], named: str
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(prices))
    with pytest.raises(ConfigError, match=rf"^PRICES_FILE=.*: claude-x\.{named}"):
        load_prices(str(path))


async def test_a_price_file_with_a_bad_value_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        '{"claude-sonnet-4-5": {"input": 3, "output": "lots", '
        '"cache_write": 3.75, "cache_read": 0.3}}'
    )
    result = await run_cli(env=server_env(PRICES_FILE=str(path), DATA_DIR=str(tmp_path / "data")))
    line = one_line(*result)
    assert f"PRICES_FILE={path}" in line
    assert "claude-sonnet-4-5.output='lots': not a number" in line


def test_a_price_file_adds_models_and_a_dated_id_takes_its_family_price(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps({"my-model": {"input": 1, "output": 2, "cache_write": 1.25, "cache_read": 0.1}})
    )
    prices = load_prices(str(path))
    assert prices.of("my-model").output == 2
    assert prices.of("claude-haiku-4-5-20251001").input == 1.0
    assert prices.of("claude-opus-4-1-20250805").output == 75.0
    usage = {"input_tokens": 1_000_000, "web_search_requests": 1000}
    assert prices.of("my-model").cost_usd(usage) == pytest.approx(1 + 10)
    # Workers get the settings pickled (WEB_CONCURRENCY): the prices travel with them.
    settings = pickle.loads(pickle.dumps(load_settings({"PRICES_FILE": str(path)})))
    assert settings.prices.of("my-model").output == 2


async def test_a_spent_cost_budget_refuses_the_next_turn(
    env: dict[str, str], service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(COST_PER_USER_PER_DAY_USD="0.0001")
    ws = await service.ws()
    first = await ws.turn("Hello")
    assert first[-1]["type"] == "turn.done"
    assert first[-1]["usage"]["cost_usd"] > 0.0001

    refused = await ws.turn("Again")
    assert refused[-1]["type"] == "error", refused[-1]
    assert refused[-1]["code"] == "budget_exhausted"
    assert "daily budget of $0.0001 of usage is spent" in refused[-1]["message"]
    me = await (await service.http.get("/api/me", headers=service.headers())).json()
    assert me["cost_budget"]["cost_usd_remaining"] == 0
    await ws.close()


async def test_a_cancelled_or_failed_answer_is_billed_for_what_it_used(
    env: dict[str, str], service: Service, fake: FakeAnthropic
) -> None:
    """Input is billed at the request's start, output as it is generated: an answer
    cut short still cost that, and cancelling must not be a way around the budgets."""
    fake.script(
        Reply.endless(chunk="tick ", delay=0.01),
        Reply.drop_after(["Half an answer, ", "then the line drops."]),
    )
    ws = await service.ws()
    started = await ws.turn_started("Count")
    await ws.until("turn.delta")
    await ws.until("turn.delta")
    await ws.send({"type": "turn.cancel", "turn_id": started["turn_id"]})
    cancelled = (await ws.until("turn.cancelled"))[-1]
    failed = (await ws.turn("Again", conversation_id=started["conversation_id"]))[-1]
    assert failed["type"] == "turn.error", failed
    await ws.close()

    stored = await service.db.messages.find(
        {"role": "assistant"}, sort=[("created_at", 1)]
    ).to_list()
    assert [m["status"] for m in stored] == ["cancelled", stored[1]["status"]]
    assert stored[1]["status"] in ("error", "interrupted")
    for message, relayed in zip(
        stored,
        (cancelled["message"]["content"], "Half an answer, then the line drops."),
        strict=True,
    ):
        usage = message["usage"]
        assert usage["input_tokens"] > 0  # as message_start reported it
        assert usage["output_tokens"] >= len(relayed) // 4 > 0  # estimated from what was relayed
        assert usage["cost_usd"] > 0
    assert cancelled["message"]["usage"] == stored[0]["usage"]

    report = await (await service.http.get("/api/usage?days=1", headers=service.headers())).json()
    both = sum(m["usage"]["cost_usd"] for m in stored)
    assert report["totals"]["cost_usd"] == pytest.approx(both)
    listed = await (await service.http.get("/api/conversations", headers=service.headers())).json()
    assert listed["items"][0]["usage"]["cost_usd"] == pytest.approx(both)
