"""Turns over Server-Sent Events: the same events as the WebSocket, in SSE framing."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from tests.conftest import Service, eventually, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.sse_client import SseReader, sse_text

CHUNKS = ["Stre", "amed ", "over ", "SSE", "."]


async def test_sse_turn_streams_deltas_and_stores_the_answer(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text(CHUNKS, delay=0.01, input_tokens=9))
    turn_id = new_turn_id()

    async with service.http.post(
        "/api/turns",
        json={"turn_id": turn_id, "content": "Tell me"},
        headers=service.headers(),
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        events = await SseReader(response).until()
        assert await SseReader(response).next() is None  # the stream ends after the terminal

    # The seq may skip where deltas waiting for a slow reader were merged.
    assert events[0].event == "turn.started"
    assert events[0].data["seq"] == 1
    assert events[-1].event == "turn.done"
    assert all(e.event == "turn.delta" for e in events[1:-1])
    seqs = [e.data["seq"] for e in events]
    assert seqs == sorted(set(seqs))
    for event in events:
        assert event.id == str(event.data["seq"])
        assert event.event == event.data["type"]
        assert event.data["turn_id"] == turn_id

    done = events[-1].data
    assert sse_text(events) == "Streamed over SSE."
    assert done["usage"]["input_tokens"] == 9
    assert done["usage"]["output_tokens"] == len(CHUNKS)
    assert done["stop_reason"] == "end_turn"
    stored = await service.db.messages.find_one({"_id": events[0].data["assistant_message_id"]})
    assert stored["content"] == sse_text(events)
    assert stored["status"] == "complete"

    status = await service.http.get(f"/api/turns/{turn_id}", headers=service.headers())
    assert await status.json() == {
        "turn_id": turn_id,
        "status": "complete",
        "conversation_id": events[0].data["conversation_id"],
        "assistant_message_id": events[0].data["assistant_message_id"],
    }


async def test_sse_errors_before_the_stream_are_problem_responses(
    service: Service, fake: FakeAnthropic
) -> None:
    response = await service.http.post(
        "/api/turns",
        json={"turn_id": new_turn_id(), "content": "Hi", "model": "gpt-nope"},
        headers=service.headers(),
    )
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert (await response.json())["code"] == "model_not_allowed"

    response = await service.http.post(
        "/api/turns", json={"turn_id": new_turn_id(), "content": "Hi"}
    )
    assert response.status == 401
    assert len(fake.requests) == 0
    assert await service.db.messages.count_documents({}) == 0


async def test_sse_replays_a_finished_turn_id(service: Service, fake: FakeAnthropic) -> None:
    fake.script(Reply.text(CHUNKS))
    turn_id = new_turn_id()
    body = {"turn_id": turn_id, "content": "Tell me"}
    async with service.http.post("/api/turns", json=body, headers=service.headers()) as response:
        first = await SseReader(response).until()
    async with service.http.post("/api/turns", json=body, headers=service.headers()) as response:
        again = await SseReader(response).until()

    assert [e.event for e in again] == ["turn.started", "turn.delta", "turn.done"]
    assert [e.id for e in again] == ["1", "2", "3"]
    assert sse_text(again) == sse_text(first) == "Streamed over SSE."
    assert len(fake.requests) == 1


async def test_a_client_gone_before_the_stream_opens_is_an_ordinary_departure(
    service: Service, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    """Seen under load: a client that asks and leaves at once was logged as an
    unhandled error with a traceback, and a 500. It is a 499 in the access log.
    A start cancelled halfway (aiohttp cancels the handler of a client gone) is
    undone whole: it had left a turn `running` with nothing running it."""
    caplog.set_level(logging.INFO)
    server = service.http.server
    turn_ids = [new_turn_id() for _ in range(5)]
    for turn_id in turn_ids:
        fake.script(Reply.text(["Nobody ", "reads ", "this."], delay=0.01))
        body = json.dumps({"turn_id": turn_id, "content": "Ask and leave"}).encode()
        _, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(
            b"POST /api/turns HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + f"Authorization: {service.headers()['Authorization']}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.transport.abort()  # gone before any answer

    async def none_running() -> bool:
        for turn_id in turn_ids:  # not started at all (404) is fine: the client left first
            async with service.http.get(
                f"/api/turns/{turn_id}", headers=service.headers()
            ) as response:
                if response.status == 200 and (await response.json())["status"] == "running":
                    return False
        return True

    assert await eventually(none_running, timeout=10)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    statuses = [getattr(r, "status", None) for r in caplog.records if r.name == "aiohttp.access"]
    assert 500 not in statuses, statuses
