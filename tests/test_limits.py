"""Per-user and per-tenant limits, over both transports: a flood stops at its own limits.

Each limit is met over WebSocket (an `error` frame with `retry_after`) and
over HTTP (429 problem+json with `Retry-After`), and another user (another
tenant, for the tenant limits) is not touched by it.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.api_client import expect_problem, sse_turn
from tests.conftest import Service, eventually, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply


async def limited(response: aiohttp.ClientResponse, code: str) -> dict[str, Any]:
    """A 429 with `code`, its `retry_after` and the same `Retry-After` header."""
    problem = await expect_problem(response, 429, code)
    assert problem["retry_after"] > 0, problem
    assert int(response.headers["Retry-After"]) >= 1
    return problem


def refused(frame: dict[str, Any], code: str) -> None:
    assert (frame["type"], frame["code"]) == ("error", code), frame
    assert frame["retry_after"] > 0, frame


async def post_turn(
    service: Service, user: str = "alice", tenant: str | None = None
) -> aiohttp.ClientResponse:
    return await service.http.post(
        "/api/turns",
        json={"turn_id": new_turn_id(), "content": "Hello"},
        headers=service.headers(user, tenant),
    )


async def test_connections_per_user_count_websockets_and_sse_streams(service: Service) -> None:
    await service.reconfigure(MAX_CONNECTIONS_PER_USER="2")
    first, second = await service.ws(), await service.ws()

    raw = await service.http.ws_connect("/ws", headers=service.headers())
    refused(await raw.receive_json(timeout=10), "too_many_connections")
    assert (await raw.receive()).type == aiohttp.WSMsgType.CLOSE
    assert raw.close_code == 1013
    await limited(await post_turn(service), "too_many_connections")
    # Another user is not limited by alice's sockets.
    bob = await service.ws("bob")
    assert (await bob.turn("Hi"))[-1]["type"] == "turn.done"

    await first.close()
    third = await service.ws()  # a closed socket gives its place back
    events = await sse_turn(service, "Hello", user="bob")
    assert events[-1]["type"] == "turn.done"
    for ws in (second, third, bob):
        await ws.close()


async def test_running_turns_per_user_count_both_transports(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(MAX_TURNS_PER_USER="2")
    fake.script(Reply.endless(), Reply.endless())
    ws = await service.ws()
    on_ws = await ws.turn_started("Count")
    streaming = await post_turn(service)  # the SSE turn runs while its stream is open
    assert streaming.status == 200

    await ws.send({"type": "turn.start", "turn_id": new_turn_id(), "content": "Third"})
    refused((await ws.until("error"))[-1], "too_many_turns")
    await limited(await post_turn(service), "too_many_turns")
    assert (await sse_turn(service, "Mine", user="bob"))[-1]["type"] == "turn.done"

    await ws.send({"type": "turn.cancel", "turn_id": on_ws["turn_id"]})
    assert (await ws.until("turn.cancelled"))[-1]["turn_id"] == on_ws["turn_id"]
    assert (await ws.turn("Now it fits"))[-1]["type"] == "turn.done"
    streaming.close()
    await ws.close()


async def test_turn_starts_per_minute_are_a_token_bucket_per_user(service: Service) -> None:
    await service.reconfigure(TURNS_PER_MINUTE="2")
    ws = await service.ws()
    first = new_turn_id()
    assert (await ws.turn("One", turn_id=first))[-1]["type"] == "turn.done"
    assert (await sse_turn(service, "Two"))[-1]["type"] == "turn.done"

    refusal = (await ws.turn("Three"))[-1]
    refused(refusal, "rate_limited")
    assert refusal["retry_after"] <= 30  # one start comes back every 30 s
    await limited(await post_turn(service), "rate_limited")
    assert (await sse_turn(service, "Mine", user="bob"))[-1]["type"] == "turn.done"
    # A replay of a finished turn is not a new start: never limited.
    replay = await ws.turn("One", turn_id=first)
    assert replay[-1]["type"] == "turn.done", replay[-1]
    await ws.close()


async def test_the_daily_output_token_budget_is_read_from_stored_usage(
    service: Service, fake: FakeAnthropic
) -> None:
    me = await (await service.http.get("/api/me", headers=service.headers())).json()
    assert "budget" not in me  # off by default

    await service.reconfigure(OUTPUT_TOKENS_PER_DAY="5")
    me = await (await service.http.get("/api/me", headers=service.headers())).json()
    assert me["budget"]["output_tokens_remaining"] == 5
    fake.script(Reply.text(["a long ", "answer"], output_tokens=7))
    ws = await service.ws()
    assert (await ws.turn("Spend it"))[-1]["type"] == "turn.done"

    me = await (await service.http.get("/api/me", headers=service.headers())).json()
    assert me["budget"]["output_tokens_used"] == 7
    assert me["budget"]["output_tokens_remaining"] == 0
    refused((await ws.turn("More"))[-1], "budget_exhausted")
    problem = await limited(await post_turn(service), "budget_exhausted")
    assert problem["retry_after"] <= 24 * 3600
    # Across a restart (another process would see the same): it is stored usage.
    await service.restart()
    await limited(await post_turn(service), "budget_exhausted")
    assert (await sse_turn(service, "Mine", user="bob"))[-1]["type"] == "turn.done"
    await ws.close()


async def test_tenant_connections_count_every_user_of_the_tenant(service: Service) -> None:
    await service.reconfigure(MAX_CONNECTIONS_PER_TENANT="2")
    alice, bob = await service.ws("alice", "acme"), await service.ws("bob", "acme")

    raw = await service.http.ws_connect("/ws", headers=service.headers("carol", "acme"))
    refusal = await raw.receive_json(timeout=10)
    refused(refusal, "too_many_connections")
    assert "per tenant" in refusal["message"]
    assert (await raw.receive()).type == aiohttp.WSMsgType.CLOSE and raw.close_code == 1013
    await limited(await post_turn(service, "carol", "acme"), "too_many_connections")
    other = await service.ws("dave", "globex")  # another tenant is not counted with acme
    assert (await other.turn("Hi"))[-1]["type"] == "turn.done"

    await alice.close()
    carol = await service.ws("carol", "acme")  # a closed socket gives the tenant its place back
    for ws in (bob, carol, other):
        await ws.close()


async def test_tenant_running_turns_and_starts_count_every_user_of_the_tenant(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(MAX_TURNS_PER_TENANT="1", TENANT_TURNS_PER_MINUTE="2")
    fake.script(Reply.endless())
    alice, bob = await service.ws("alice", "acme"), await service.ws("bob", "acme")
    running = await alice.turn_started("Long")

    refusal = (await bob.turn("Mine"))[-1]
    refused(refusal, "too_many_turns")
    assert "per tenant" in refusal["message"]
    await limited(await post_turn(service, "bob", "acme"), "too_many_turns")
    assert (await sse_turn(service, "Elsewhere", user="dave", tenant="globex"))[-1]["type"] == (
        "turn.done"
    )

    await alice.send({"type": "turn.cancel", "turn_id": running["turn_id"]})
    assert (await alice.until("turn.cancelled"))[-1]["turn_id"] == running["turn_id"]
    # The second of the tenant's two starts a minute is left (refusals took none).
    assert (await bob.turn("Now"))[-1]["type"] == "turn.done"
    refusal = (await alice.turn("Again"))[-1]
    refused(refusal, "rate_limited")
    assert "per tenant" in refusal["message"]
    await limited(await post_turn(service, "carol", "acme"), "rate_limited")
    for ws in (alice, bob):
        await ws.close()


async def test_the_tenant_daily_budget_counts_every_user_of_the_tenant(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(OUTPUT_TOKENS_PER_TENANT_PER_DAY="5")
    fake.script(Reply.text(["a long ", "answer"], output_tokens=7))
    alice = await service.ws("alice", "acme")
    assert (await alice.turn("Spend it"))[-1]["type"] == "turn.done"

    bob = await service.ws("bob", "acme")
    refusal = (await bob.turn("More"))[-1]
    refused(refusal, "budget_exhausted")
    assert refusal["message"].startswith("Your tenant's daily budget"), refusal
    await limited(await post_turn(service, "carol", "acme"), "budget_exhausted")
    assert (await sse_turn(service, "Mine", user="dave", tenant="globex"))[-1]["type"] == (
        "turn.done"
    )
    for ws in (alice, bob):
        await ws.close()


async def test_a_replay_within_a_flood_of_refused_starts_is_served_when_sent_again(
    service: Service,
) -> None:
    await service.reconfigure(TURNS_PER_MINUTE="1")
    ws = await service.ws()
    first = new_turn_id()
    done = (await ws.turn("One", turn_id=first))[-1]
    assert done["type"] == "turn.done"
    for _ in range(10):  # beyond the few lookups a second a user at its limits gets
        refused((await ws.turn("Flood"))[-1], "rate_limited")

    async def replayed() -> bool:
        answer = (await ws.turn("One", turn_id=first))[-1]
        if answer["type"] == "error":
            refused(answer, "rate_limited")  # refused unread: sent again, it is served
            return False
        return bool(answer["type"] == "turn.done" and answer["message"] == done["message"])

    assert await eventually(replayed, timeout=10, interval=0.3)
    await ws.close()
