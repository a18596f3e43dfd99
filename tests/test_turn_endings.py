"""Every turn ends, for every follower, in every interleaving (issue 13's findings).

Each test pins one path where a turn used to end silently, wrongly, or with
its text lost. Faults come from the real database server (`tests.faults`),
never from patched code.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.identity import Identity
from server.typedefs import engine_key, ws_connections_key
from tests.conftest import Service, eventually, new_turn_id, text_of
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.faults import DatabaseFaults

ENDINGS = ("turn.done", "turn.cancelled", "turn.error")


def app_of(service: Service) -> Any:
    return service.http.server.app


async def test_a_follower_whose_stream_raises_gets_an_error_frame(
    service: Service, fake: FakeAnthropic, env: dict[str, str], faults: DatabaseFaults
) -> None:
    # The follower on another process polls the database; the poll fails once.
    other = await Service(dict(env), fake).start()
    try:
        fake.script(Reply.endless(chunk="tick ", delay=0.02))
        ws = await service.ws()
        turn_id = new_turn_id()
        await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Go"})
        await ws.until("turn.delta")
        elsewhere = await other.ws()
        await elsewhere.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": 1})
        assert (await elsewhere.recv())["type"] == "turn.snapshot"

        await faults.fail("messages", ["find"], times=1)
        error = (await elsewhere.until("error"))[-1]

        assert error["code"] == "internal"
        assert error["turn_id"] == turn_id
        # The socket lives on, and following again works.
        await elsewhere.send({"type": "ping"})
        assert (await elsewhere.until("pong"))[-1]["type"] == "pong"
        await ws.send({"type": "turn.cancel", "turn_id": turn_id})
        await elsewhere.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": 1})
        assert (await elsewhere.until(*ENDINGS))[-1]["type"] == "turn.cancelled"
        await ws.close()
        await elsewhere.close()
    finally:
        await other.close()


async def test_resume_on_the_starting_socket_under_on_disconnect_cancel_ends_done(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(ON_DISCONNECT="cancel")
    chunks = [f"c{i} " for i in range(20)]
    fake.script(Reply.text(chunks, delay=0.02))
    ws = await service.ws()
    turn_id = new_turn_id()
    await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Go"})
    first = await ws.until("turn.delta")

    await ws.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": first[-1]["seq"]})
    rest = await ws.until(*ENDINGS)

    assert rest[-1]["type"] == "turn.done"
    assert rest[-1]["message"]["content"] == "".join(chunks)
    stored = await service.db.messages.find_one({"turn_id": turn_id, "role": "assistant"})
    assert stored["status"] == "complete"
    await ws.close()


async def test_deleting_a_conversation_does_not_swallow_the_callers_cancellation(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.endless(chunk="tick ", delay=0.02))
    ws = await service.ws()
    started = await ws.turn_started("Go")
    engine = app_of(service)[engine_key]
    identity = Identity(ws.ready["tenant_id"], ws.ready["user_id"])

    deleting = asyncio.create_task(engine.delete_conversation(identity, started["conversation_id"]))
    await asyncio.sleep(0)  # it has asked the turn to stop and waits for its ending
    deleting.cancel()

    with pytest.raises(asyncio.CancelledError):
        await deleting
    assert deleting.cancelled()
    await ws.until(*ENDINGS)
    kept = await service.db.conversations.count_documents({"_id": started["conversation_id"]})
    assert kept == 1, "a cancelled delete must not go on deleting"
    await ws.close()


async def test_a_turn_that_loses_its_lease_stops_and_keeps_the_sweeps_ending(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.endless(chunk="tick ", delay=0.02))
    ws = await service.ws()
    started = await ws.turn_started("Go")
    turn_id = started["turn_id"]
    frames = await ws.until("turn.delta")

    # Another process's sweep decides this turn's owner is dead.
    assert await app_of(service)[engine_key].recover(everything=True) == 1
    frames += await ws.until(*ENDINGS)

    ending = frames[-1]
    assert ending["type"] == "turn.error"
    assert ending["code"] == "interrupted"
    assert await fake.requests[0].wait_finished(within=5)
    turn = await service.db.turns.find_one({"turn_id": turn_id})
    assert turn["status"] == "interrupted"
    message = await service.db.messages.find_one({"_id": started["assistant_message_id"]})
    assert message["status"] == "interrupted"
    assert message["error"]["code"] == "interrupted"
    assert message["content"] == text_of(frames), "the text streamed before the stop is kept"
    conversation = await service.db.conversations.find_one({"_id": started["conversation_id"]})
    assert conversation["running_turn_id"] is None
    await ws.close()


async def test_a_failed_final_save_is_retried_until_stored(
    service: Service, fake: FakeAnthropic, faults: DatabaseFaults
) -> None:
    await service.reconfigure(CHECKPOINT_INTERVAL_SECONDS="60", CHAT_TITLES="off")
    chunks = [f"w{i} " for i in range(10)]
    fake.script(Reply.text(chunks, delay=0.03))
    ws = await service.ws()
    started = await ws.turn_started("Go")
    await ws.until("turn.delta")

    # The ending's first writes fail twice on the server.
    await faults.fail("turns", ["findAndModify", "update"], times=2)
    ending = (await ws.until(*ENDINGS))[-1]

    assert ending["type"] == "turn.done", ending
    assert ending["message"]["content"] == "".join(chunks)
    message = await service.db.messages.find_one({"_id": started["assistant_message_id"]})
    assert (message["status"], message["content"]) == ("complete", "".join(chunks))
    turn = await service.db.turns.find_one({"turn_id": started["turn_id"]})
    assert turn["status"] == "complete"
    conversation = await service.db.conversations.find_one({"_id": started["conversation_id"]})
    assert conversation["running_turn_id"] is None
    await ws.close()


async def test_begin_failing_midway_leaves_no_running_turn_and_a_free_conversation(
    service: Service, fake: FakeAnthropic, faults: DatabaseFaults
) -> None:
    created = await service.http.post(
        "/api/conversations", json={"title": "Busy?"}, headers=service.headers()
    )
    conversation_id = (await created.json())["id"]
    ws = await service.ws()
    turn_id = new_turn_id()

    await faults.fail("messages", ["update"], times=1)  # the messages are written as upserts
    await ws.send(
        {
            "type": "turn.start",
            "turn_id": turn_id,
            "conversation_id": conversation_id,
            "content": "Hello",
        }
    )
    error = (await ws.until("error", *ENDINGS))[-1]

    assert error["type"] == "error"
    assert error["code"] == "storage_unavailable"
    assert error["turn_id"] == turn_id
    assert await service.db.turns.count_documents({"status": "running"}) == 0
    assert await service.db.messages.count_documents({"conversation_id": conversation_id}) == 0
    conversation = await service.db.conversations.find_one({"_id": conversation_id})
    assert conversation["running_turn_id"] is None
    # Nothing half-done blocks a retry of the same turn.
    fake.script(Reply.text(["fine"]))
    frames = await ws.turn("Hello", turn_id=turn_id, conversation_id=conversation_id)
    assert frames[-1]["type"] == "turn.done"
    assert frames[-1]["message"]["content"] == "fine"
    await ws.close()


async def test_begin_failing_for_a_new_conversation_leaves_no_conversation(
    service: Service, fake: FakeAnthropic, faults: DatabaseFaults
) -> None:
    ws = await service.ws()
    await faults.fail("messages", ["update"], times=1)
    frames = await ws.turn("Hello")

    assert frames[-1]["type"] == "error"
    assert frames[-1]["code"] == "storage_unavailable"
    assert await service.db.conversations.count_documents({}) == 0
    assert await service.db.turns.count_documents({}) == 0
    await ws.close()


async def test_memory_stays_bounded_after_many_turns_and_resumes_on_one_socket(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(
        TURN_RETENTION_MAX="3", WS_FRAMES_PER_SECOND="10000", WS_FRAME_BURST="10000"
    )
    ws = await service.ws()
    endings = []
    for n in range(8):
        fake.script(Reply.text([f"answer {n}"]))
        endings.append((await ws.turn(f"question {n}"))[-1])
    engine = app_of(service)[engine_key]
    assert engine.held_turns <= 3

    last = endings[-1]
    for _ in range(1000):
        await ws.send({"type": "turn.resume", "turn_id": last["turn_id"], "after_seq": last["seq"]})
        assert (await ws.recv())["type"] == "turn.done"

    (connection,) = app_of(service)[ws_connections_key]

    async def no_followers_left() -> bool:
        return bool(connection.following == 0)

    assert await eventually(no_followers_left), "followers of finished turns are dropped"
    # A turn no longer held is served from storage, whole.
    await ws.send({"type": "turn.resume", "turn_id": endings[0]["turn_id"], "after_seq": 0})
    replayed = await ws.until(*ENDINGS)
    assert replayed[-1]["message"]["content"] == "answer 0"
    await ws.close()
