"""Frames that are not valid requests get an `error` frame; the connection stays usable."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.conftest import WS, Service, eventually, new_turn_id
from tests.fake_anthropic import FakeAnthropic


async def assert_still_usable(ws: WS) -> None:
    await ws.send({"type": "ping"})
    assert await ws.recv() == {"type": "pong"}


BAD_FRAMES: dict[str, tuple[str, str]] = {
    "not json": ("{'type': 'ping'", "malformed_json"),
    "array": ('[{"type": "ping"}]', "validation_error"),
    "number": ("42", "validation_error"),
    "string": ('"ping"', "validation_error"),
    "missing type": ('{"turn_id": "t1"}', "validation_error"),
    "type not a string": ('{"type": 7}', "validation_error"),
    "unknown type": ('{"type": "turn.explode", "turn_id": "t1"}', "validation_error"),
    "start without content": ('{"type": "turn.start", "turn_id": "t1"}', "validation_error"),
    "content not a string": (
        '{"type": "turn.start", "turn_id": "t1", "content": ["hi"]}',
        "validation_error",
    ),
    "empty content": ('{"type": "turn.start", "turn_id": "t1", "content": ""}', "validation_error"),
    "blank content": (
        '{"type": "turn.start", "turn_id": "t1", "content": " \\n\\t "}',
        "validation_error",
    ),
    "turn_id too long": (
        json.dumps({"type": "turn.start", "turn_id": "t" * 65, "content": "hi"}),
        "validation_error",
    ),
    "unknown field": (
        '{"type": "turn.start", "turn_id": "t1", "content": "hi", "temperature": 2}',
        "validation_error",
    ),
    "unknown model": (
        '{"type": "turn.start", "turn_id": "t1", "content": "hi", "model": "gpt-4"}',
        "model_not_allowed",
    ),
    "unknown conversation": (
        '{"type": "turn.start", "turn_id": "t1", "content": "hi", "conversation_id": "nope"}',
        "not_found",
    ),
    "resume negative seq": (
        '{"type": "turn.resume", "turn_id": "t1", "after_seq": -1}',
        "validation_error",
    ),
    "cancel unknown turn": ('{"type": "turn.cancel", "turn_id": "t1"}', "not_found"),
    "second auth": ('{"type": "auth", "token": "x"}', "validation_error"),
}


@pytest.mark.parametrize("name", BAD_FRAMES)
async def test_bad_frame_gets_an_error_and_the_socket_stays_open(
    service: Service, fake: FakeAnthropic, name: str
) -> None:
    data, code = BAD_FRAMES[name]
    ws = await service.ws()
    await ws.raw.send_str(data)
    error = await ws.recv()
    assert error["type"] == "error"
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if '"turn_id": "t1"' in data:
        assert error["turn_id"] == "t1"
    await assert_still_usable(ws)
    assert len(fake.requests) == 0
    assert await service.db.messages.count_documents({}) == 0
    assert await service.db.turns.count_documents({}) == 0
    await ws.close()


async def test_someone_elses_conversation_is_not_found(
    service: Service, fake: FakeAnthropic
) -> None:
    alice = await service.ws("alice")
    frames = await alice.turn("Mine")
    conversation_id = frames[0]["conversation_id"]
    bob = await service.ws("bob")
    turn_id = new_turn_id()
    await bob.send(
        {
            "type": "turn.start",
            "turn_id": turn_id,
            "conversation_id": conversation_id,
            "content": "Let me in",
        }
    )
    error = await bob.recv()
    assert (error["type"], error["code"], error["turn_id"]) == ("error", "not_found", turn_id)
    assert await service.db.messages.count_documents({"conversation_id": conversation_id}) == 2
    assert len(fake.requests) == 1
    assert (await bob.turn("My own then"))[-1]["type"] == "turn.done"
    await alice.close()
    await bob.close()


async def test_frame_over_the_size_limit(service: Service, fake: FakeAnthropic) -> None:
    ws = await service.ws()
    big: dict[str, Any] = {"type": "turn.start", "turn_id": "t1", "content": "x" * 200_000}
    await ws.send(big)
    error = await ws.recv()
    assert (error["type"], error["code"]) == ("error", "payload_too_large")
    await assert_still_usable(ws)
    assert await service.db.messages.count_documents({}) == 0
    await ws.close()


@pytest.mark.parametrize("attempt", range(3))
async def test_a_frame_over_the_hard_limit_closes_cleanly_with_1009(
    service: Service, attempt: int
) -> None:
    """The refused frame is still arriving when the server closes: the client must
    still read the error frame and the close frame, never a reset (issue 18)."""
    raw = await service.http.ws_connect("/ws", headers=service.headers(), max_msg_size=0)
    assert (await raw.receive_json())["type"] == "ready"

    await raw.send_str("x" * (5 * 1024 * 1024))

    error = await raw.receive_json(timeout=10)
    assert (error["type"], error["code"]) == ("error", "payload_too_large")
    closing = await raw.receive(timeout=10)
    assert (closing.type, closing.data, closing.extra) == (
        aiohttp.WSMsgType.CLOSE,
        1009,
        "payload_too_large",
    )
    await raw.close()
    ws = await service.ws()  # the service lives on
    await assert_still_usable(ws)
    await ws.close()


async def test_invalid_utf8_closes_cleanly_with_1007(service: Service) -> None:
    raw = await service.http.ws_connect("/ws", headers=service.headers())
    assert (await raw.receive_json())["type"] == "ready"

    await raw._writer.send_frame(b"\xff\xfe" * 100_000, aiohttp.WSMsgType.TEXT)

    closing = await raw.receive(timeout=10)
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1007)
    await raw.close()


async def test_binary_frame(service: Service) -> None:
    ws = await service.ws()
    await ws.raw.send_bytes(b'{"type": "ping"}')
    error = await ws.recv()
    assert (error["type"], error["code"]) == ("error", "validation_error")
    await assert_still_usable(ws)
    await ws.close()


async def test_a_flood_of_frames_is_throttled_not_fatal(
    service: Service, fake: FakeAnthropic
) -> None:
    ws = await service.ws()
    for _ in range(200):
        await ws.send({"type": "ping"})
    answers = [await ws.recv() for _ in range(200)]

    pongs = [a for a in answers if a == {"type": "pong"}]
    limited = [a for a in answers if a.get("code") == "rate_limited"]
    assert len(pongs) + len(limited) == 200
    assert pongs and limited
    assert all(a["type"] == "error" for a in limited)

    async def answered() -> bool:
        await ws.send({"type": "ping"})
        return await ws.recv() == {"type": "pong"}

    assert await eventually(answered, timeout=5, interval=0.1)
    turn_id = new_turn_id()

    async def a_turn_goes_through() -> list[dict[str, Any]] | None:
        # The bucket refills at its own pace: a start may still be limited, never lost.
        frames = await ws.turn("Still there?", turn_id=turn_id)
        return None if frames[-1].get("code") == "rate_limited" else frames

    frames = await eventually(a_turn_goes_through, timeout=5, interval=0.1)
    assert frames and frames[-1]["type"] == "turn.done", frames
    stored = await service.db.messages.find({}).sort("seq", 1).to_list()
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert stored[1]["content"] == "Echo: Still there?"
    await ws.close()
