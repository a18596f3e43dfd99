"""Isolation: every route and frame, tried with another user's and another tenant's ids.

Alice (tenant `acme`) has a finished turn and a running one. Bob (same
tenant) and an `alice` of tenant `other` (same user id, other tenant) try
each REST route and each WS frame on her ids: every answer is `not_found`,
exactly as for ids that do not exist, and nothing of hers changes.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_client import expect_problem, sse_turn
from tests.conftest import Service, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply

INTRUDERS = [("bob", "acme"), ("alice", "other")]


async def owned_state(service: Service, conversation_ids: list[str]) -> list[Any]:
    """What alice sees of her conversations and the finished one's messages."""
    headers = service.headers("alice", "acme")
    state: list[Any] = [
        await (await service.http.get("/api/conversations", headers=headers)).json()
    ]
    for conversation_id in conversation_ids:
        path = f"/api/conversations/{conversation_id}"
        state.append(await (await service.http.get(path, headers=headers)).json())
    messages = f"/api/conversations/{conversation_ids[0]}/messages"
    state.append(await (await service.http.get(messages, headers=headers)).json())
    return state


@pytest.mark.parametrize(("user", "tenant"), INTRUDERS)
async def test_another_users_and_another_tenants_ids_are_not_found_and_untouched(
    service: Service, fake: FakeAnthropic, user: str, tenant: str
) -> None:
    finished_id = new_turn_id()
    done = await sse_turn(service, "mine", user="alice", tenant="acme", turn_id=finished_id)
    finished_conversation = done[0]["conversation_id"]
    fake.script(Reply.endless())
    owner = await service.ws("alice", "acme")
    running = await owner.turn_started("still mine")
    running_id, running_conversation = running["turn_id"], running["conversation_id"]
    before = await owned_state(service, [finished_conversation])

    headers = service.headers(user, tenant)
    http = service.http
    for conversation_id in (finished_conversation, running_conversation):
        path = f"/api/conversations/{conversation_id}"
        await expect_problem(await http.get(path, headers=headers), 404, "not_found")
        patched = await http.patch(path, json={"title": "mine now"}, headers=headers)
        await expect_problem(patched, 404, "not_found")
        await expect_problem(await http.delete(path, headers=headers), 404, "not_found")
        messages = await http.get(f"{path}/messages", headers=headers)
        await expect_problem(messages, 404, "not_found")
        start = {"turn_id": new_turn_id(), "conversation_id": conversation_id, "content": "hi"}
        await expect_problem(
            await http.post("/api/turns", json=start, headers=headers), 404, "not_found"
        )
    for turn_id in (finished_id, running_id):
        path = f"/api/turns/{turn_id}"
        await expect_problem(await http.get(path, headers=headers), 404, "not_found")
        await expect_problem(await http.post(f"{path}/cancel", headers=headers), 404, "not_found")
        events = await http.get(f"{path}/events", headers=headers)
        await expect_problem(events, 404, "not_found")
    listed = await (await http.get("/api/conversations", headers=headers)).json()
    assert listed["items"] == []

    intruder = await service.ws(user, tenant)
    for conversation_id in (finished_conversation, running_conversation):
        frames = await intruder.turn("hi", conversation_id=conversation_id)
        assert (frames[-1]["type"], frames[-1]["code"]) == ("error", "not_found"), frames
    for turn_id in (finished_id, running_id):
        for frame in (
            {"type": "turn.resume", "turn_id": turn_id, "after_seq": 0},
            {"type": "turn.cancel", "turn_id": turn_id},
        ):
            await intruder.send(frame)
            refusal = await intruder.recv()
            assert (refusal["type"], refusal["code"], refusal["turn_id"]) == (
                "error",
                "not_found",
                turn_id,
            ), (frame, refusal)
    # Turn ids are per user: the same id is a new turn of the intruder's, not a replay of hers.
    own = await intruder.turn("my own", turn_id=finished_id)
    assert own[0]["type"] == "turn.started"
    assert own[0]["conversation_id"] != finished_conversation
    assert own[-1]["message"]["content"] == "Echo: my own"
    await intruder.close()

    # Alice's turn ran on untouched, and her stored things are as they were.
    frame = await owner.recv()
    assert (frame["type"], frame["turn_id"]) == ("turn.delta", running_id), frame
    assert await owned_state(service, [finished_conversation]) == before
    await owner.send({"type": "turn.cancel", "turn_id": running_id})
    assert (await owner.until("turn.cancelled"))[-1]["turn_id"] == running_id
    await owner.close()
