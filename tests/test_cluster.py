"""Several `python -m server` processes meeting in one real `redis-server` (REDIS_URL).

A turn running in one process is followed from another with its live events,
`seq` for `seq`, over WebSocket and SSE alike; a cancel sent to another process
reaches the owner over Pub/Sub; Redis going away mid-turn degrades to MongoDB
snapshots without losing text, and live resume comes back with Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import eventually, make_token, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.redis_server import RedisServer
from tests.server_process import ServerProcess, connect, followed_elsewhere, several
from tests.sse_client import SseReader

AUTH = {"Authorization": f"Bearer {make_token('alice')}"}
ENDINGS = ("turn.done", "turn.cancelled", "turn.error")
WORDS = [f"w{i} " for i in range(80)]


@pytest.fixture
async def processes(
    mongo_uri: str, fake: FakeAnthropic, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[list[ServerProcess]]:
    """Two processes on the test's database and its Redis, started, with a long answer scripted."""
    fake.script(Reply.text(WORDS, delay=0.02))
    async with several(
        ("a", "b"), fake.base_url, tmp_path, mongo_uri, start=True, REDIS_URL=redis_server.url
    ) as started:
        yield started


async def stored_answer(
    session: aiohttp.ClientSession, process: ServerProcess, conversation_id: str
) -> dict[str, Any]:
    """The conversation's last message as any process serves it from MongoDB."""
    url = f"{process.base_url}/api/conversations/{conversation_id}/messages"
    async with session.get(url, headers=AUTH) as response:
        answer: dict[str, Any] = (await response.json())["items"][-1]
    return answer


def deltas_text(frames: list[dict[str, Any]], *, up_to: int | None = None) -> str:
    return "".join(
        f["text"]
        for f in frames
        if f["type"] == "turn.delta" and (up_to is None or f["seq"] <= up_to)
    )


def assert_live_after(frames: list[dict[str, Any]], after_seq: int) -> None:
    """The owner's own events: deltas, never snapshots, each `seq` past the one before."""
    types = [f["type"] for f in frames]
    assert "turn.snapshot" not in types, types
    assert "turn.delta" in types, types
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(set(seqs)) and seqs[0] > after_seq, seqs


async def test_a_turn_is_resumed_live_in_another_process(
    processes: list[ServerProcess], session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    a, b = processes
    here = await connect(session, a, AUTH)
    started = await here.turn_started("Count")
    turn_id = started["turn_id"]
    seen = [started, *await here.until("turn.delta")]
    seen += await here.until("turn.delta")
    after_seq = seen[-1]["seq"]

    there = await connect(session, b, AUTH)
    await there.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": after_seq})
    followed = await there.until(*ENDINGS)
    ending_here = (await here.until(*ENDINGS))[-1]

    assert_live_after(followed, after_seq)
    ending = followed[-1]
    assert ending["type"] == "turn.done" and ending["seq"] == ending_here["seq"]
    whole = "".join(WORDS)
    assert deltas_text(seen, up_to=after_seq) + deltas_text(followed) == whole
    assert ending["message"]["content"] == whole
    stored = await stored_answer(session, b, started["conversation_id"])
    assert stored["content"] == whole and stored["status"] == "complete"
    await asyncio.gather(here.close(), there.close())


async def test_an_sse_turn_is_reattached_with_last_event_id_in_another_process(
    processes: list[ServerProcess], session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    a, b = processes
    async with session.post(
        f"{a.base_url}/api/turns", json={"turn_id": new_turn_id(), "content": "Count"}, headers=AUTH
    ) as posted:
        reader = SseReader(posted)
        first = await reader.until("turn.delta")
        first += await reader.until("turn.delta")
    # The POST's stream is gone (a dropped connection): re-attach on the other process.
    turn_id = first[0].data["turn_id"]
    last_id = first[-1].id
    assert last_id is not None
    headers = {**AUTH, "Last-Event-ID": last_id}
    async with session.get(f"{b.base_url}/api/turns/{turn_id}/events", headers=headers) as got:
        assert got.status == 200
        rest = await SseReader(got).until()

    assert_live_after([e.data for e in rest], int(last_id))
    assert [e.id for e in rest] == [str(e.data["seq"]) for e in rest]
    before = deltas_text([e.data for e in first])
    assert before + deltas_text([e.data for e in rest]) == "".join(WORDS)
    assert rest[-1].event == "turn.done"
    assert rest[-1].data["message"]["content"] == "".join(WORDS)


async def test_a_cancel_sent_to_another_process_reaches_the_owner_over_pubsub(
    mongo_uri: str,
    fake: FakeAnthropic,
    redis_server: RedisServer,
    tmp_path: Path,
    session: aiohttp.ClientSession,
) -> None:
    # Checkpoints every 30 s: the flag in MongoDB cannot be what stops the turn in time.
    slow_checkpoints = {"CHECKPOINT_INTERVAL_SECONDS": "30", "TURN_LEASE_SECONDS": "120"}
    fake.script(Reply.endless(chunk="tick ", delay=0.01))
    async with several(
        ("a", "b"), fake.base_url, tmp_path, mongo_uri, start=True, REDIS_URL=redis_server.url,
        **slow_checkpoints,
    ) as (a, b):  # fmt: skip
        here = await connect(session, a, AUTH)
        started = await here.turn_started("Count")
        await here.until("turn.delta")
        turn_id = started["turn_id"]
        async with session.post(f"{b.base_url}/api/turns/{turn_id}/cancel", headers=AUTH) as sent:
            assert sent.status == 202
        ending = (await here.until(*ENDINGS))[-1]

        assert ending["type"] == "turn.cancelled"
        assert ending["message"]["content"].startswith("tick ")
        assert await fake.requests[0].wait_finished(within=5)
        assert fake.requests[0].closed_by_client.is_set()
        stored = await stored_answer(session, b, started["conversation_id"])
        assert stored["status"] == "cancelled"
        assert stored["content"] == ending["message"]["content"]
        await here.close()


def as_client_sees(frames: list[dict[str, Any]], text: str = "") -> str:
    """The answer a client builds: deltas appended, a snapshot's content in place of the text."""
    for frame in frames:
        if frame["type"] == "turn.delta":
            text += frame["text"]
        elif frame["type"] == "turn.snapshot":
            text = frame["message"]["content"]
    return text


async def redis_available(session: aiohttp.ClientSession, process: ServerProcess) -> bool:
    async with session.get(f"{process.base_url}/metrics") as response:
        return "chat_redis_available 1.0" in await response.text()


def log_lines(process: ServerProcess, words: str) -> int:
    return sum(words in line for line in process.log_path.read_text().splitlines())


async def test_redis_stopped_mid_turn_degrades_to_snapshots_and_comes_back(
    processes: list[ServerProcess],
    session: aiohttp.ClientSession,
    fake: FakeAnthropic,
    redis_server: RedisServer,
) -> None:
    a, b = processes
    long_answer = [f"v{i} " for i in range(150)]
    fake.clear()
    fake.script(Reply.text(long_answer, delay=0.02), Reply.text(WORDS, delay=0.02))
    here, started, there = await followed_elsewhere(session, a, b, AUTH)
    live = await there.until("turn.delta")
    assert [f["type"] for f in live] == ["turn.delta"], "followed live while Redis is up"

    await redis_server.stop()
    rest = await there.until(*ENDINGS)
    owner_frames = await here.until(*ENDINGS)

    whole = "".join(long_answer)
    assert "turn.snapshot" in [f["type"] for f in rest], "carried on from MongoDB"
    seqs = [f["seq"] for f in live + rest]
    assert seqs == sorted(seqs), "seq never goes back"
    assert as_client_sees(live + rest) == whole
    assert rest[-1]["type"] == "turn.done" and rest[-1]["message"]["content"] == whole
    assert owner_frames[-1]["type"] == "turn.done"
    stored = await stored_answer(session, a, started["conversation_id"])
    assert stored["content"] == whole and stored["status"] == "complete"
    for process in (a, b):
        assert log_lines(process, "is unavailable") == 1, process.log_path.read_text()

    # Redis back (empty): both processes rejoin by themselves, and resume is live again.
    await redis_server.start()
    for process in (a, b):
        assert await eventually(lambda p=process: redis_available(session, p), timeout=10)
        assert log_lines(process, "is back") == 1
    again = await here.turn_started("Again", conversation_id=started["conversation_id"])
    seen = [again, *await here.until("turn.delta")]
    await there.send({"type": "turn.resume", "turn_id": again["turn_id"], "after_seq": 1})
    followed = await there.until(*ENDINGS)
    assert_live_after(followed, 1)
    assert deltas_text(seen, up_to=1) + deltas_text(followed) == "".join(WORDS)
    await asyncio.gather(here.close(), there.close())


async def test_a_killed_owner_ends_the_turn_as_interrupted_for_its_followers(
    processes: list[ServerProcess], session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    a, b = processes
    fake.clear()
    fake.script(Reply.endless(chunk="tick ", delay=0.01))
    _, started, there = await followed_elsewhere(session, a, b, AUTH)
    live = await there.until("turn.delta")

    async def checkpointed() -> bool:
        answer = await stored_answer(session, b, started["conversation_id"])
        return bool(answer["content"])

    assert await eventually(checkpointed)
    await a.kill()  # no ending on the stream, ever: b's sweep recovers the turn (1 s lease)
    rest = await there.until(*ENDINGS, timeout=20)

    ending = rest[-1]
    assert ending["type"] == "turn.error" and ending["code"] == "interrupted"
    assert ending["seq"] > live[-1]["seq"]
    stored = await stored_answer(session, b, started["conversation_id"])
    assert stored["status"] == "interrupted" and stored["content"].startswith("tick ")
    assert as_client_sees(live + rest) == stored["content"], "the text as stored, the record"
    await there.close()
