"""Conversations as trees: edit, regenerate, switch branches, rate, on both transports.

Each test drives the real service as a client does and reads back through the
API; what the model was sent is read off the fake's recorded requests.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Service, eventually, make_token, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.server_process import ServerProcess, process_env
from tests.sse_client import SseReader

Turn = dict[str, Any]
# A turn on an existing conversation: reads of the conversation, the message it follows
# and the branch above it (one `find` by `_id`s); claims of the turn id and the
# conversation, the two messages written in one bulk, the ending (turn, answer), the
# conversation freed (a findAndModify: the change feed pushes it as freed).
EXPECTED_COMMANDS_PER_TURN = Counter({"find": 3, "findAndModify": 5, "update": 1})


async def run_turn(service: Service, transport: str, user: str = "alice", **fields: Any) -> Turn:
    """One turn to its end over `transport`; its `turn.started` and terminal events."""
    body = {"turn_id": fields.pop("turn_id", new_turn_id()), **fields}
    if transport == "ws":
        ws = await service.ws(user)
        try:
            await ws.send({"type": "turn.start", **body})
            frames = await ws.until("turn.done", "turn.cancelled", "turn.error", "error")
        finally:
            await ws.close()
    else:
        async with service.http.post(
            "/api/turns", json=body, headers=service.headers(user)
        ) as response:
            if response.status != 200:
                return {"error": await response.json(), "status": response.status}
            frames = [event.data for event in await SseReader(response).until()]
    if frames[-1]["type"] == "error":
        return {"error": frames[-1]}
    assert frames[0]["type"] == "turn.started", frames
    assert frames[-1]["type"] == "turn.done", frames[-1]
    return {"started": frames[0], "done": frames[-1]}


async def branch(service: Service, conversation_id: str, leaf: str | None = None) -> list[Turn]:
    query = f"?leaf={leaf}" if leaf else ""
    async with service.http.get(
        f"/api/conversations/{conversation_id}/messages{query}", headers=service.headers()
    ) as response:
        assert response.status == 200, await response.text()
        items: list[Turn] = (await response.json())["items"]
        return items


async def patch(service: Service, conversation_id: str, body: Turn, user: str = "alice") -> Any:
    async with service.http.patch(
        f"/api/conversations/{conversation_id}", json=body, headers=service.headers(user)
    ) as response:
        return response.status, await response.json()


def sent_to_model(fake: FakeAnthropic) -> list[tuple[str, str]]:
    """The last chat request's messages as (role, text)."""
    messages = fake.requests[-1].sent["messages"]
    return [(m["role"], m["content"] if isinstance(m["content"], str) else "") for m in messages]


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_edit_regenerate_and_switch_back(
    service: Service, fake: FakeAnthropic, transport: str
) -> None:
    first = await run_turn(service, transport, content="One?")
    conversation_id = first["started"]["conversation_id"]
    second = await run_turn(service, transport, conversation_id=conversation_id, content="Two?")
    await run_turn(service, transport, conversation_id=conversation_id, content="Three?")
    original = await branch(service, conversation_id)
    assert [m["content"] for m in original] == [
        "One?", "Echo: One?", "Two?", "Echo: Two?", "Three?", "Echo: Three?",
    ]  # fmt: skip
    assert [m["parent_id"] for m in original] == [None] + [m["id"] for m in original[:-1]]

    # Edit the second question: it follows the first answer, as the original did.
    edited = await run_turn(
        service,
        transport,
        conversation_id=conversation_id,
        parent_message_id=first["started"]["assistant_message_id"],
        content="Two, edited?",
    )
    assert sent_to_model(fake) == [
        ("user", "One?"),
        ("assistant", "Echo: One?"),
        ("user", "Two, edited?"),
    ]
    assert edited["started"]["parent_message_id"] == first["started"]["assistant_message_id"]

    # Regenerate the new answer: a sibling answer to the same question, no new question.
    fake.script(Reply.text(["Another ", "answer."]))
    again = await run_turn(
        service,
        transport,
        conversation_id=conversation_id,
        regenerate_message_id=edited["started"]["assistant_message_id"],
    )
    assert again["started"]["user_message_id"] == edited["started"]["user_message_id"]
    assert again["started"]["regenerate_message_id"] == edited["started"]["assistant_message_id"]
    assert sent_to_model(fake) == [
        ("user", "One?"),
        ("assistant", "Echo: One?"),
        ("user", "Two, edited?"),
    ]

    shown = await branch(service, conversation_id)
    assert [m["content"] for m in shown] == [
        "One?",
        "Echo: One?",
        "Two, edited?",
        "Another answer.",
    ]
    question, answer = shown[2], shown[3]
    assert question["siblings"] == {
        "index": 1,
        "count": 2,
        "ids": [second["started"]["user_message_id"], question["id"]],
    }
    assert answer["siblings"] == {
        "index": 1,
        "count": 2,
        "ids": [edited["started"]["assistant_message_id"], answer["id"]],
    }
    assert shown[0]["siblings"]["count"] == 1
    seqs = [m["seq"] for m in shown]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4

    # Back to the first branch: switching to the original question shows its newest
    # branch, exchanges 2 and 3 exactly as they were.
    status, conversation = await patch(
        service, conversation_id, {"current_leaf": second["started"]["user_message_id"]}
    )
    assert status == 200, conversation
    assert conversation["current_leaf"] == original[-1]["id"]
    expected = [dict(m) for m in original]  # unchanged, but the edit is now its sibling
    expected[2]["siblings"] = {"index": 0, "count": 2, "ids": [original[2]["id"], question["id"]]}
    assert await branch(service, conversation_id) == expected
    # And any branch can be read without switching.
    assert [m["content"] for m in await branch(service, conversation_id, leaf=answer["id"])] == [
        m["content"] for m in shown
    ]

    # A question after the switch follows the branch shown.
    await run_turn(service, transport, conversation_id=conversation_id, content="Four?")
    assert [text for _, text in sent_to_model(fake)][-3:] == ["Three?", "Echo: Three?", "Four?"]


async def test_a_replayed_turn_id_replays_its_own_answer_after_branching(
    service: Service, fake: FakeAnthropic
) -> None:
    first = await run_turn(service, "ws", content="Hello?")
    conversation_id = first["started"]["conversation_id"]
    fake.script(Reply.text(["A ", "second ", "answer."]))
    await run_turn(
        service,
        "ws",
        conversation_id=conversation_id,
        regenerate_message_id=first["started"]["assistant_message_id"],
    )

    replayed = await run_turn(service, "sse", turn_id=first["started"]["turn_id"], content="x")

    assert replayed["done"]["message"]["content"] == "Echo: Hello?"
    assert replayed["done"]["message"]["id"] == first["started"]["assistant_message_id"]
    assert len(fake.requests) == 2  # nothing asked again


async def test_a_new_first_question_is_a_sibling_of_the_root(
    service: Service, fake: FakeAnthropic
) -> None:
    first = await run_turn(service, "ws", content="Soup?")
    conversation_id = first["started"]["conversation_id"]
    await run_turn(service, "ws", conversation_id=conversation_id, content="More?")

    await run_turn(
        service, "ws", conversation_id=conversation_id, parent_message_id=None, content="Salad?"
    )

    assert sent_to_model(fake) == [("user", "Salad?")]
    shown = await branch(service, conversation_id)
    assert [m["content"] for m in shown] == ["Salad?", "Echo: Salad?"]
    assert shown[0]["siblings"]["ids"] == [first["started"]["user_message_id"], shown[0]["id"]]


async def test_feedback_is_stored_shown_replaced_and_cleared(service: Service) -> None:
    first = await run_turn(service, "ws", content="Rate me")
    answer_id = first["started"]["assistant_message_id"]
    conversation_id = first["started"]["conversation_id"]
    url = f"/api/messages/{answer_id}/feedback"

    async with service.http.put(url, json={"rating": "up"}, headers=service.headers()) as r:
        assert r.status == 200
        assert (await r.json())["feedback"]["rating"] == "up"
    body = {"rating": "down", "comment": "Too short."}
    async with service.http.put(url, json=body, headers=service.headers()) as r:
        assert r.status == 200
    rated = (await branch(service, conversation_id))[1]["feedback"]
    assert (rated["rating"], rated["comment"]) == ("down", "Too short.")
    async with service.http.delete(url, headers=service.headers()) as r:
        assert r.status == 204
    assert (await branch(service, conversation_id))[1]["feedback"] is None


async def problem(service: Service, method: str, url: str, body: Any, user: str = "alice") -> Any:
    async with service.http.request(
        method, url, json=body, headers=service.headers(user)
    ) as response:
        return response.status, (await response.json())["code"]


async def test_bad_branch_requests_are_refused_and_store_nothing(
    service: Service, fake: FakeAnthropic
) -> None:
    mine = await run_turn(service, "ws", content="Mine")
    conversation_id = mine["started"]["conversation_id"]
    question_id = mine["started"]["user_message_id"]
    answer_id = mine["started"]["assistant_message_id"]
    other = await run_turn(service, "ws", content="Elsewhere")
    bobs = await run_turn(service, "ws", user="bob", content="Bob's")
    before = await service.db.messages.count_documents({})

    ws = await service.ws()
    here = {"conversation_id": conversation_id}
    elsewhere = other["started"]["assistant_message_id"]
    bobs_answer = bobs["started"]["assistant_message_id"]
    bad = "validation_error"
    cases: list[tuple[Turn, str]] = [
        # Into another user's conversation.
        ({"conversation_id": bobs["started"]["conversation_id"], "content": "x"}, "not_found"),
        # A parent from another conversation, and another user's.
        ({**here, "parent_message_id": elsewhere, "content": "x"}, "not_found"),
        ({**here, "parent_message_id": bobs_answer, "content": "x"}, "not_found"),
        # A user's message as the parent, or regenerated.
        ({**here, "parent_message_id": question_id, "content": "x"}, bad),
        ({**here, "regenerate_message_id": question_id}, bad),
        # An edit with empty content; content with a regenerate; both fields; no conversation.
        ({**here, "parent_message_id": None, "content": ""}, bad),
        ({**here, "regenerate_message_id": answer_id, "content": "x"}, bad),
        ({**here, "regenerate_message_id": answer_id, "parent_message_id": None}, bad),
        ({"regenerate_message_id": answer_id}, bad),
        ({**here, "parent_message_id": 7, "content": "x"}, bad),
    ]  # fmt: skip
    for fields, code in cases:
        await ws.send({"type": "turn.start", "turn_id": new_turn_id(), **fields})
        frame = await ws.recv()
        assert (frame["type"], frame["code"]) == ("error", code), (fields, frame)
        async with service.http.post(
            "/api/turns", json={"turn_id": new_turn_id(), **fields}, headers=service.headers()
        ) as response:
            assert (await response.json())["code"] == code, fields
    await ws.send({"type": "ping"})
    assert await ws.recv() == {"type": "pong"}  # the connection lives on
    await ws.close()

    url = f"/api/conversations/{conversation_id}"
    assert await problem(service, "PATCH", url, {"current_leaf": "nope"}) == (404, "not_found")
    other_answer = other["started"]["assistant_message_id"]
    assert await problem(service, "PATCH", url, {"current_leaf": other_answer}) == (
        404,
        "not_found",
    )
    assert await problem(service, "PATCH", url, {"current_leaf": None}) == (
        422,
        "validation_error",
    )
    feedback = f"/api/messages/{question_id}/feedback"
    assert await problem(service, "PUT", feedback, {"rating": "up"}) == (422, "validation_error")
    feedback = f"/api/messages/{answer_id}/feedback"
    assert await problem(service, "PUT", feedback, {"rating": "meh"}) == (422, "validation_error")
    too_long = {"rating": "up", "comment": "x" * 2001}
    assert await problem(service, "PUT", feedback, too_long) == (422, "validation_error")
    assert await problem(service, "PUT", feedback, {"rating": "up"}, user="bob") == (
        404,
        "not_found",
    )

    assert await service.db.messages.count_documents({}) == before
    assert all(m.get("feedback") is None for m in await service.db.messages.find().to_list())
    conversation = await service.db.conversations.find_one({"_id": conversation_id})
    assert conversation["current_leaf"] == answer_id


async def test_regenerating_while_a_turn_runs_is_a_conflict(
    service: Service, fake: FakeAnthropic
) -> None:
    first = await run_turn(service, "ws", content="Go")
    conversation_id = first["started"]["conversation_id"]
    fake.script(Reply.endless(chunk="tick ", delay=0.01))
    ws = await service.ws()
    running = await ws.turn_started("Count", conversation_id=conversation_id)

    await ws.send(
        {
            "type": "turn.start",
            "turn_id": new_turn_id(),
            "conversation_id": conversation_id,
            "regenerate_message_id": first["started"]["assistant_message_id"],
        }
    )
    refused = await ws.until("error")
    assert refused[-1]["code"] == "conflict"
    await ws.send({"type": "turn.cancel", "turn_id": running["turn_id"]})
    await ws.until("turn.cancelled")
    await ws.close()


async def test_a_conversation_stored_before_branches_reads_as_one_chain(
    service: Service, fake: FakeAnthropic
) -> None:
    """Written as the previous version stored it: no `current_leaf`, no `parent_id`."""
    first = await run_turn(service, "ws", content="Old one")
    conversation_id = first["started"]["conversation_id"]
    await run_turn(service, "ws", conversation_id=conversation_id, content="Old two")
    await service.db.conversations.update_one(
        {"_id": conversation_id}, {"$unset": {"current_leaf": ""}}
    )
    await service.db.messages.update_many(
        {"conversation_id": conversation_id}, {"$unset": {"parent_id": "", "ancestors": ""}}
    )

    chain = await branch(service, conversation_id)

    assert [m["content"] for m in chain] == ["Old one", "Echo: Old one", "Old two", "Echo: Old two"]
    assert [m["parent_id"] for m in chain] == [None] + [m["id"] for m in chain[:-1]]
    await run_turn(service, "ws", conversation_id=conversation_id, content="New three")
    assert [text for _, text in sent_to_model(fake)] == [
        "Old one", "Echo: Old one", "Old two", "Echo: Old two", "New three",
    ]  # fmt: skip


async def test_a_killed_process_leaves_its_branch_interrupted_and_the_other_untouched(
    fake: FakeAnthropic, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    server = ServerProcess(process_env(fake.base_url, tmp_path / "data"), tmp_path / "log")
    auth = {"Authorization": f"Bearer {make_token('alice')}"}
    try:
        await server.start(session)
        ws = await session.ws_connect(f"{server.base_url}/ws", headers=auth)
        assert (await ws.receive_json(timeout=10))["type"] == "ready"

        async def turn(**fields: Any) -> list[Turn]:
            await ws.send_json({"type": "turn.start", "turn_id": new_turn_id(), **fields})
            frames = [await ws.receive_json(timeout=10)]
            while frames[-1]["type"] not in ("turn.done", "turn.error", "error"):
                frames.append(await ws.receive_json(timeout=10))
            return frames

        first = (await turn(content="Root"))[0]
        conversation_id = first["conversation_id"]
        kept = (await turn(conversation_id=conversation_id, content="Kept"))[-1]["message"]
        # A regenerate of the first answer, killed mid-answer.
        fake.script(Reply.endless(chunk="tick ", delay=0.01))
        regenerate = {
            "type": "turn.start",
            "turn_id": new_turn_id(),
            "conversation_id": conversation_id,
            "regenerate_message_id": first["assistant_message_id"],
        }
        await ws.send_json(regenerate)
        started = await ws.receive_json(timeout=10)
        assert started["type"] == "turn.started", started
        while (await ws.receive_json(timeout=10))["type"] != "turn.delta":
            pass
        await server.kill()
        await ws.close()
        await server.start(session)

        async def messages(leaf: str | None = None) -> list[Turn]:
            query = f"?leaf={leaf}" if leaf else ""
            url = f"{server.base_url}/api/conversations/{conversation_id}/messages{query}"
            async with session.get(url, headers=auth) as response:
                items: list[Turn] = (await response.json())["items"]
                return items

        async def interrupted() -> bool:
            return (await messages())[-1]["status"] == "interrupted"

        assert await eventually(interrupted, timeout=15, interval=0.2)
        shown = await messages()
        assert [m["id"] for m in shown] == [
            first["user_message_id"],
            started["assistant_message_id"],
        ]
        assert shown[-1]["siblings"]["count"] == 2
        other = await messages(leaf=kept["id"])
        assert [(m["content"], m["status"]) for m in other] == [
            ("Root", "complete"),
            ("Echo: Root", "complete"),
            ("Kept", "complete"),
            ("Echo: Kept", "complete"),
        ]
        assert other[-1] == {**kept, "siblings": other[-1]["siblings"]}
    finally:
        await server.stop()


@pytest.mark.parametrize("branches", [1, 6])
async def test_a_turn_start_reads_the_same_whatever_the_branches(
    service: Service, fake: FakeAnthropic, branches: int
) -> None:
    """The history is one read by `_id`s: counted in database commands, which do not
    grow with the number of sibling branches (a time would be a benchmark's job).
    No checkpoints or titles, which run on timers of their own."""
    await service.reconfigure(CHECKPOINT_INTERVAL_SECONDS="600", CHAT_TITLES="off")
    first = await run_turn(service, "ws", content="Root")
    conversation_id = first["started"]["conversation_id"]
    for _ in range(branches - 1):
        await run_turn(
            service,
            "ws",
            conversation_id=conversation_id,
            regenerate_message_id=first["started"]["assistant_message_id"],
        )
    before = await database_commands(service)
    await run_turn(service, "ws", conversation_id=conversation_id, content="Next")
    used = await database_commands(service) - before
    # What the first and sixth branch alike cost; a change here is a change in the design.
    assert used == EXPECTED_COMMANDS_PER_TURN, used


async def database_commands(service: Service) -> Counter[str]:
    async with service.http.get("/metrics") as response:
        text = await response.text()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("chat_db_operation_seconds_count{"):
            labels, value = line.rsplit(" ", 1)
            command = labels.split('command="', 1)[1].split('"', 1)[0]
            counts[command] += int(float(value))
    return counts


async def test_a_new_conversation_is_a_tree_already_and_reading_it_writes_nothing(
    service: Service,
) -> None:
    async with service.http.post(
        "/api/conversations", json={"title": "Empty"}, headers=service.headers()
    ) as response:
        conversation_id = (await response.json())["id"]
    stored = await service.db.conversations.find_one({"_id": conversation_id})
    assert "current_leaf" in stored and stored["current_leaf"] is None

    assert await branch(service, conversation_id) == []

    assert await service.db.conversations.find_one({"_id": conversation_id}) == stored
