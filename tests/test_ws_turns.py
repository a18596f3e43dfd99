"""Turns over the WebSocket: authentication, one turn's frames, idempotency and limits."""

from __future__ import annotations

from typing import Any

import aiohttp

from server.config import load_settings
from tests.conftest import Service, make_token, new_turn_id, text_of
from tests.fake_anthropic import FakeAnthropic, Reply

CHUNKS = ["Hel", "lo, ", "wor", "ld", "!"]


def assert_turn_shape(frames: list[dict[str, Any]], terminal: str) -> None:
    """`turn.started` first (seq 1), deltas, one terminal frame; seq strictly increasing.

    The seq may skip: deltas a slow reader has not yet taken are merged into one
    frame that carries the seq of the last delta it stands for.
    """
    assert frames[0]["type"] == "turn.started"
    assert frames[0]["seq"] == 1
    assert frames[-1]["type"] == terminal
    assert all(f["type"] == "turn.delta" for f in frames[1:-1]), [f["type"] for f in frames]
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(set(seqs)), seqs
    assert {f["turn_id"] for f in frames} == {frames[0]["turn_id"]}


async def test_turn_streams_deltas_and_stores_the_answer(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text(CHUNKS, delay=0.01, input_tokens=12))
    ws = await service.ws()
    turn_id = new_turn_id()

    frames = await ws.turn("Say hello", turn_id=turn_id)

    assert_turn_shape(frames, "turn.done")
    started, done = frames[0], frames[-1]
    assert started["turn_id"] == turn_id
    assert started["model"] == "claude-test-large"
    assert text_of(frames) == "Hello, world!"
    assert done["usage"]["input_tokens"] == 12
    assert done["usage"]["output_tokens"] == len(CHUNKS)
    assert done["stop_reason"] == "end_turn"
    assert done["message"]["content"] == "Hello, world!"
    assert done["message"]["status"] == "complete"

    stored = await service.db.messages.find_one({"_id": started["assistant_message_id"]})
    assert stored["content"] == text_of(frames)
    assert stored["status"] == "complete"
    assert stored["usage"] == done["usage"]
    question = await service.db.messages.find_one({"_id": started["user_message_id"]})
    assert (question["role"], question["content"], question["status"]) == (
        "user",
        "Say hello",
        "complete",
    )
    assert (question["seq"], stored["seq"]) == (1, 2)
    conversation = await service.db.conversations.find_one({"_id": started["conversation_id"]})
    assert conversation["running_turn_id"] is None
    await ws.close()


async def test_auth_by_first_frame(service: Service) -> None:
    raw = await service.http.ws_connect("/ws")
    await raw.send_json({"type": "auth", "token": make_token("carol", "acme")})
    ready = await raw.receive_json(timeout=5)
    cursor = ready.pop("cursor")  # the change feed's, as of now (tests/test_sync.py)
    assert ready == {"type": "ready", "user_id": "carol", "tenant_id": "acme"}
    assert isinstance(cursor, str) and cursor
    await raw.send_json({"type": "ping"})
    assert await raw.receive_json(timeout=5) == {"type": "pong"}
    await raw.close()


async def test_bad_token_gets_unauthorized_then_close_4401(service: Service) -> None:
    raw = await service.http.ws_connect("/ws")
    await raw.send_json({"type": "auth", "token": "not-a-jwt"})
    error = await raw.receive_json(timeout=5)
    assert error["type"] == "error"
    assert error["code"] == "unauthorized"
    closing = await raw.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert raw.close_code == 4401


async def test_first_frame_that_is_not_auth_is_refused(service: Service) -> None:
    raw = await service.http.ws_connect("/ws")
    await raw.send_json({"type": "ping"})
    error = await raw.receive_json(timeout=5)
    assert error["code"] == "unauthorized"
    await raw.receive(timeout=5)
    assert raw.close_code == 4401


async def test_no_auth_frame_in_time_closes_4408(service: Service) -> None:
    await service.reconfigure(WS_AUTH_TIMEOUT_SECONDS="0.3")
    raw = await service.http.ws_connect("/ws")
    frames = []
    while (message := await raw.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
        frames.append(message.json())
    assert message.type == aiohttp.WSMsgType.CLOSE
    assert raw.close_code == 4408
    assert [f["code"] for f in frames] == ["unauthorized"]


def test_auth_frame_time_limit_defaults_to_ten_seconds() -> None:
    assert load_settings({}).ws_auth_timeout_seconds == 10.0


async def test_repeated_turn_id_of_finished_turn_replays_without_the_model(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text(CHUNKS, delay=0.01))
    ws = await service.ws()
    turn_id = new_turn_id()
    first = await ws.turn("Say hello", turn_id=turn_id)
    assert len(fake.requests) == 1

    again = await ws.turn("Say hello", turn_id=turn_id)

    assert [f["type"] for f in again] == ["turn.started", "turn.delta", "turn.done"]
    assert [f["seq"] for f in again] == [1, 2, 3]
    assert again[1]["text"] == text_of(first) == "Hello, world!"
    for field in ("conversation_id", "user_message_id", "assistant_message_id", "model"):
        assert again[0][field] == first[0][field]
    assert again[2]["message"] == first[-1]["message"]
    assert again[2]["usage"] == first[-1]["usage"]
    assert len(fake.requests) == 1
    assert await service.db.messages.count_documents({}) == 2
    await ws.close()


async def test_repeated_turn_id_while_running_is_a_conflict(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.endless())
    ws = await service.ws()
    turn_id = new_turn_id()
    await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Go on"})
    await ws.until("turn.delta")

    await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Go on"})
    error = (await ws.until("error"))[-1]

    assert error["code"] == "conflict"
    assert error["turn_id"] == turn_id
    await ws.send({"type": "turn.cancel", "turn_id": turn_id})
    assert (await ws.until("turn.cancelled"))[-1]["turn_id"] == turn_id
    assert len(fake.requests) == 1
    await ws.close()


async def test_second_turn_on_a_busy_conversation_is_a_conflict(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.endless())
    ws = await service.ws()
    first = new_turn_id()
    await ws.send({"type": "turn.start", "turn_id": first, "content": "Go on"})
    started = (await ws.until("turn.started"))[-1]
    conversation_id = started["conversation_id"]

    second = new_turn_id()
    await ws.send(
        {
            "type": "turn.start",
            "turn_id": second,
            "conversation_id": conversation_id,
            "content": "And another thing",
        }
    )
    error = (await ws.until("error"))[-1]

    assert (error["code"], error["turn_id"]) == ("conflict", second)
    assert await service.db.turns.count_documents({}) == 1
    assert await service.db.messages.count_documents({"conversation_id": conversation_id}) == 2
    await ws.send({"type": "turn.cancel", "turn_id": first})
    await ws.until("turn.cancelled")
    # The slot is free again once the first turn has ended.
    frames = await ws.turn("And another thing", conversation_id=conversation_id)
    assert frames[-1]["type"] == "turn.done"
    await ws.close()


async def test_turns_per_connection_are_limited(service: Service, fake: FakeAnthropic) -> None:
    await service.reconfigure(MAX_TURNS_PER_CONNECTION="1")
    fake.script(Reply.endless())
    ws = await service.ws()
    first = new_turn_id()
    await ws.send({"type": "turn.start", "turn_id": first, "content": "Go on"})
    await ws.until("turn.delta")

    second = new_turn_id()
    await ws.send({"type": "turn.start", "turn_id": second, "content": "Meanwhile"})
    error = (await ws.until("error"))[-1]

    assert (error["code"], error["turn_id"]) == ("too_many_turns", second)
    assert len(fake.requests) == 1
    # Another connection of the same user has its own allowance.
    other = await service.ws()
    assert (await other.turn("Meanwhile"))[-1]["type"] == "turn.done"
    await ws.send({"type": "turn.cancel", "turn_id": first})
    await ws.until("turn.cancelled")
    await ws.close()
    await other.close()
