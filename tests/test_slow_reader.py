"""A slow reader gets fewer, larger deltas and loses no text.

The end-to-end test drives a real socket that stops reading; the others test
`TurnLog`, the pure in-memory structure that does the merging, directly.
"""

from __future__ import annotations

import asyncio
from typing import Any

from server.events import TurnEvent
from server.turns.log import TurnLog
from tests.conftest import Service, eventually, new_turn_id, text_of
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.sse_client import SseReader

CHUNK_COUNT = 3000


async def test_slow_websocket_reader_gets_merged_deltas_and_all_the_text(
    service: Service, fake: FakeAnthropic
) -> None:
    chunks = [f"{n:05d}" + "x" * 194 + "\n" for n in range(CHUNK_COUNT)]
    fake.script(Reply.text(chunks))
    ws = await service.ws()
    await ws.send({"type": "turn.start", "turn_id": new_turn_id(), "content": "A long one"})

    # Read nothing until the model has sent the whole answer.
    async def requested() -> int:
        return len(fake.requests)

    assert await eventually(requested)
    assert await fake.requests[0].wait_finished(within=30)
    frames = await ws.until("turn.done", "turn.error", timeout=30)

    assert frames[0]["type"] == "turn.started"
    assert frames[-1]["type"] == "turn.done"
    deltas = [f for f in frames if f["type"] == "turn.delta"]
    assert 0 < len(deltas) < CHUNK_COUNT
    assert all(d["text"] for d in deltas)
    print(f"\n{CHUNK_COUNT} chunks reached the slow reader as {len(deltas)} delta frames")
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(set(seqs))
    assert frames[-1]["seq"] == CHUNK_COUNT + 2  # started, every chunk, done
    text = text_of(frames)
    assert text == "".join(chunks)
    stored = await service.db.messages.find_one({"_id": frames[0]["assistant_message_id"]})
    assert stored["content"] == text
    await ws.close()


def snapshot(text: str, seq: int) -> dict[str, Any]:
    return {"content": text, "status": "streaming"}


def new_log(window: int = 8) -> TurnLog:
    log = TurnLog("t1", snapshot, window=window)
    log.publish("turn.started", {"conversation_id": "c1"})
    return log


async def drain(events: Any) -> list[TurnEvent]:
    return [event async for event in events]


def text_in(events: list[TurnEvent]) -> str:
    text = ""
    for event in events:
        if event.type == "turn.snapshot":
            text = event.payload["message"]["content"]
        elif event.type == "turn.delta":
            text += event.payload["text"]
    return text


async def test_turn_log_follower_from_the_start_after_window_overflow_is_lossless() -> None:
    log = new_log(window=8)
    parts = [f"part{n} " for n in range(100)]
    for part in parts:
        log.publish("turn.delta", {"text": part})
    log.publish("turn.done", {"message": None})

    events = await drain(log.follow(0))

    assert events[0].type == "turn.started"
    assert events[-1].type == "turn.done"
    assert text_in(events) == "".join(parts) == log.text
    assert len(events) < 100
    seqs = [e.seq for e in events]
    assert seqs == sorted(set(seqs))
    assert events[-1].seq == 102


async def test_turn_log_resume_from_an_evicted_seq_yields_a_snapshot() -> None:
    log = new_log(window=8)
    parts = [f"p{n}," for n in range(50)]
    for part in parts:
        log.publish("turn.delta", {"text": part})

    follower = log.follow(after_seq=5)
    first = await anext(follower)
    assert first.type == "turn.snapshot"
    assert first.payload["message"]["content"] == "".join(parts)
    assert first.seq == log.last_seq

    log.publish("turn.delta", {"text": "last"})
    log.publish("turn.done", {"message": None})
    rest = await drain(follower)
    assert [e.type for e in rest] == ["turn.delta", "turn.done"]
    assert text_in([first, *rest]) == "".join(parts) + "last"


async def test_turn_log_resume_within_the_window_gets_only_the_missing_events() -> None:
    log = new_log(window=64)
    for n in range(10):
        log.publish("turn.delta", {"text": f"{n}"})

    events = await drain_after_terminal(log, after_seq=7)

    assert events[0].type == "turn.delta"
    assert events[0].payload["text"] == "6789"  # seq 8..11 hold "6".."9", merged
    assert events[-1].type == "turn.done"


async def drain_after_terminal(log: TurnLog, after_seq: int) -> list[TurnEvent]:
    log.publish("turn.done", {"message": None})
    return await drain(log.follow(after_seq))


async def test_turn_log_live_follower_merges_what_it_has_not_taken() -> None:
    log = new_log(window=16)
    received: list[TurnEvent] = []
    proceed = asyncio.Event()

    async def slow_follower() -> None:
        async for event in log.follow(0):
            received.append(event)
            if len(received) == 2:
                await proceed.wait()  # a socket that is backed up

    task = asyncio.create_task(slow_follower())
    log.publish("turn.delta", {"text": "a"})
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    for n in range(40):
        log.publish("turn.delta", {"text": str(n % 10)})
    proceed.set()
    log.publish("turn.done", {"message": None})
    await asyncio.wait_for(task, 5)

    assert [e.type for e in received][-1] == "turn.done"
    assert len(received) < 43
    assert text_in(received) == log.text == "a" + "0123456789" * 4
    seqs = [e.seq for e in received]
    assert seqs == sorted(set(seqs))


async def test_turn_log_publishes_nothing_after_the_terminal_event() -> None:
    log = new_log()
    log.publish("turn.cancelled", {"message": None})
    try:
        log.publish("turn.delta", {"text": "late"})
    except RuntimeError:
        pass
    else:
        raise AssertionError("a delta after the terminal event was accepted")
    assert [e.type for e in await drain(log.follow(0))] == ["turn.started", "turn.cancelled"]


async def test_turn_log_follower_that_has_the_terminal_gets_it_again() -> None:
    log = new_log()
    log.publish("turn.delta", {"text": "all"})
    done = log.publish("turn.done", {"message": None})
    assert await drain(log.follow(done.seq)) == [done]
    assert await drain(log.follow(done.seq + 5)) == [done]


async def test_turn_log_follow_from_a_seq_never_reached_yields_a_snapshot() -> None:
    log = new_log()
    log.publish("turn.delta", {"text": "so far"})
    follower = log.follow(after_seq=99)
    first = await anext(follower)
    assert first.type == "turn.snapshot"
    assert first.payload["message"]["content"] == "so far"
    log.publish("turn.delta", {"text": ", then more"})
    log.publish("turn.done", {"message": None})
    rest = await drain(follower)
    assert [e.type for e in rest] == ["turn.delta", "turn.done"]
    assert text_in([first, *rest]) == "so far, then more"


async def test_slow_sse_reader_gets_merged_deltas_and_all_the_text(
    service: Service, fake: FakeAnthropic
) -> None:
    chunks = [f"{n:05d}" + "y" * 194 + "\n" for n in range(CHUNK_COUNT)]
    fake.script(Reply.text(chunks))
    body = {"turn_id": new_turn_id(), "content": "A long one"}
    # `turn.done` carries the whole 600 KB answer on one line: more than aiohttp's default.
    big_lines = {"read_bufsize": 2**20}
    async with service.http.post(
        "/api/turns", json=body, headers=service.headers(), **big_lines
    ) as response:
        assert response.status == 200
        # Read nothing until the model has sent the whole answer: the socket backs up.
        assert await eventually(lambda: _requested(fake))
        assert await fake.requests[0].wait_finished(within=30)
        events = [event.data for event in await SseReader(response).until()]

    assert events[-1]["type"] == "turn.done"
    deltas = [e for e in events if e["type"] == "turn.delta"]
    assert 0 < len(deltas) < CHUNK_COUNT
    assert "".join(d["text"] for d in deltas) == "".join(chunks)
    stored = await service.db.messages.find_one({"_id": events[0]["assistant_message_id"]})
    assert stored["content"] == "".join(chunks)


async def _requested(fake: FakeAnthropic) -> int:
    return len(fake.requests)
