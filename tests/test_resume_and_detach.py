"""A dropped connection only detaches; `turn.resume` and Last-Event-ID re-attach."""

from __future__ import annotations

from typing import Any

from tests.conftest import Service, eventually, new_turn_id, text_of
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.sse_client import SseReader, sse_text

CHUNKS = [f"word{i} " for i in range(20)]
FULL_TEXT = "".join(CHUNKS)


async def stored_answer(service: Service, message_id: str) -> dict[str, Any]:
    message: dict[str, Any] = await service.db.messages.find_one({"_id": message_id})
    return message


async def stored_status(service: Service, message_id: str) -> str:
    return str((await stored_answer(service, message_id))["status"])


async def test_disconnect_detaches_and_the_answer_is_completed(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text(CHUNKS, delay=0.02))
    ws = await service.ws()
    await ws.send({"type": "turn.start", "turn_id": new_turn_id(), "content": "Talk"})
    frames = await ws.until("turn.delta")
    await ws.close()
    message_id = frames[0]["assistant_message_id"]

    async def complete() -> bool:
        return await stored_status(service, message_id) == "complete"

    assert await eventually(complete)
    stored = await stored_answer(service, message_id)
    assert stored["content"] == FULL_TEXT
    assert not fake.requests[0].closed_by_client.is_set()


async def test_resume_over_websocket_from_a_seq(service: Service, fake: FakeAnthropic) -> None:
    fake.script(Reply.text(CHUNKS, delay=0.02))
    first = await service.ws()
    turn_id = new_turn_id()
    await first.send({"type": "turn.start", "turn_id": turn_id, "content": "Talk"})
    before = await first.until("turn.delta")
    before += await first.until("turn.delta")
    await first.close()

    second = await service.ws()
    await second.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": before[-1]["seq"]})
    after = await second.until("turn.done", "turn.cancelled", "turn.error")

    assert after[-1]["type"] == "turn.done"
    assert [f["type"] for f in after[:-1]] == ["turn.delta"] * (len(after) - 1)
    seqs = [f["seq"] for f in before + after]
    assert seqs == sorted(set(seqs))  # nothing repeated, nothing out of order
    assert text_of(before) + text_of(after) == FULL_TEXT
    assert after[-1]["message"]["content"] == FULL_TEXT
    assert len(fake.requests) == 1
    await second.close()


async def test_resume_on_another_tab_while_the_first_still_follows(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text(CHUNKS, delay=0.01))
    tab1, tab2 = await service.ws(), await service.ws()
    turn_id = new_turn_id()
    await tab1.send({"type": "turn.start", "turn_id": turn_id, "content": "Talk"})
    await tab1.until("turn.started")
    await tab2.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": 0})

    one = await tab1.until("turn.done")
    two = await tab2.until("turn.done")

    assert two[0]["type"] == "turn.started"
    assert text_of(one) == text_of(two) == FULL_TEXT
    await tab1.close()
    await tab2.close()


async def test_resume_over_sse_with_last_event_id(service: Service, fake: FakeAnthropic) -> None:
    fake.script(Reply.text(CHUNKS, delay=0.02))
    turn_id = new_turn_id()
    async with service.http.post(
        "/api/turns", json={"turn_id": turn_id, "content": "Talk"}, headers=service.headers()
    ) as response:
        reader = SseReader(response)
        before = await reader.until("turn.delta")
        before += await reader.until("turn.delta")
        response.close()  # the client goes away mid-turn
    last_id = before[-1].id
    assert last_id is not None

    async with service.http.get(
        f"/api/turns/{turn_id}/events", headers={**service.headers(), "Last-Event-ID": last_id}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        after = await SseReader(response).until()

    assert after[-1].event == "turn.done"
    assert int(after[0].data["seq"]) > int(last_id)
    assert sse_text(before) + sse_text(after) == FULL_TEXT
    assert len(fake.requests) == 1


async def test_resume_of_a_forgotten_turn_sends_a_snapshot(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(TURN_RETENTION_SECONDS="0")
    fake.script(Reply.text(CHUNKS))
    ws = await service.ws()
    turn_id = new_turn_id()
    frames = await ws.turn("Talk", turn_id=turn_id)
    assert frames[-1]["type"] == "turn.done"

    await ws.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": 1})
    snapshot, terminal = await ws.until("turn.done", "turn.error")

    assert snapshot["type"] == "turn.snapshot"
    assert snapshot["message"]["content"] == FULL_TEXT
    assert snapshot["message"]["status"] == "complete"
    assert terminal["type"] == "turn.done"
    assert terminal["seq"] == frames[-1]["seq"]
    assert snapshot["seq"] < terminal["seq"]
    assert terminal["message"]["content"] == FULL_TEXT
    assert terminal["usage"] == frames[-1]["usage"]

    async with service.http.get(
        f"/api/turns/{turn_id}/events", headers={**service.headers(), "Last-Event-ID": "2"}
    ) as response:
        events = await SseReader(response).until()
    assert [e.event for e in events] == ["turn.snapshot", "turn.done"]
    assert events[0].data["message"]["content"] == FULL_TEXT
    assert len(fake.requests) == 1
    await ws.close()


async def test_resume_of_an_unknown_or_foreign_turn_is_not_found(
    service: Service, fake: FakeAnthropic
) -> None:
    ws = await service.ws("alice")
    turn_id = new_turn_id()
    await ws.turn("Hello", turn_id=turn_id)
    bob = await service.ws("bob")
    await bob.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": 0})
    assert (await bob.recv())["code"] == "not_found"
    response = await service.http.get(
        f"/api/turns/{turn_id}/events", headers={**service.headers("bob"), "Last-Event-ID": "1"}
    )
    assert response.status == 404
    response = await service.http.get(
        f"/api/turns/{turn_id}/events", headers={**service.headers(), "Last-Event-ID": "x"}
    )
    assert response.status == 422
    await ws.close()
    await bob.close()


async def test_disconnect_cancels_when_configured(service: Service, fake: FakeAnthropic) -> None:
    await service.reconfigure(ON_DISCONNECT="cancel")
    fake.script(Reply.endless())
    ws = await service.ws()
    await ws.send({"type": "turn.start", "turn_id": new_turn_id(), "content": "Go"})
    frames = await ws.until("turn.delta")
    await ws.close()
    message_id = frames[0]["assistant_message_id"]

    async def cancelled() -> bool:
        return await stored_status(service, message_id) == "cancelled"

    assert await eventually(cancelled)
    assert await fake.requests[0].wait_finished(within=2)
    assert fake.requests[0].closed_by_client.is_set()
    stored = await stored_answer(service, message_id)
    assert stored["content"].startswith(text_of(frames))

    async def turn_cancelled() -> bool:
        # The finaliser writes the message first, then the turn: wait for both.
        turn = await service.db.turns.find_one({"turn_id": frames[0]["turn_id"]})
        return bool(turn["status"] == "cancelled")

    assert await eventually(turn_cancelled)


async def test_sse_disconnect_cancels_when_configured(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(ON_DISCONNECT="cancel")
    fake.script(Reply.endless())
    turn_id = new_turn_id()
    async with service.http.post(
        "/api/turns", json={"turn_id": turn_id, "content": "Go"}, headers=service.headers()
    ) as response:
        await SseReader(response).until("turn.delta")
        response.close()

    async def cancelled() -> bool:
        turn = await service.db.turns.find_one({"turn_id": turn_id})
        return turn is not None and turn["status"] == "cancelled"

    assert await eventually(cancelled)
    assert await fake.requests[0].wait_finished(within=2)
    assert fake.requests[0].closed_by_client.is_set()


async def test_resume_from_the_terminal_seq_sends_the_ending_again(
    service: Service, fake: FakeAnthropic
) -> None:
    # An EventSource reconnects whenever a stream ends; one that had every event
    # must still see the ending, or it would reconnect for ever.
    fake.script(Reply.text(CHUNKS))
    ws = await service.ws()
    turn_id = new_turn_id()
    frames = await ws.turn("Talk", turn_id=turn_id)
    last = frames[-1]

    await ws.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": last["seq"]})
    assert await ws.recv() == last
    async with service.http.get(
        f"/api/turns/{turn_id}/events",
        headers={**service.headers(), "Last-Event-ID": str(last["seq"])},
    ) as response:
        reader = SseReader(response)
        events = await reader.until()
        assert await reader.next() is None
    assert [e.data for e in events] == [last]
    await ws.close()


async def test_resume_from_a_seq_the_turn_never_reached_gets_a_snapshot(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text(CHUNKS, delay=0.02))
    ws = await service.ws()
    turn_id = new_turn_id()
    await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Talk"})
    await ws.until("turn.delta")

    other = await service.ws()
    await other.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": 10_000})
    frames = await other.until("turn.done", "turn.error")

    assert frames[0]["type"] == "turn.snapshot"
    assert frames[-1]["type"] == "turn.done"
    assert frames[0]["message"]["content"] + text_of(frames) == FULL_TEXT
    await ws.close()
    await other.close()
