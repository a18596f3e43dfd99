"""Processes meeting in one real `redis-server` (REDIS_URL), reached directly.

A turn running in one process is followed from another with its live events,
`seq` for `seq`; a cancel sent to another process reaches the owner over
Pub/Sub. The same behind nginx in round robin, with SSE, a killed owner and
Redis going away: `test_cluster_nginx.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from server.cluster.streams import stream_key
from server.identity import Identity
from tests.cluster_client import (
    AUTH,
    ENDINGS,
    WORDS,
    as_client_sees,
    assert_live_after,
    deltas_text,
    log_lines,
    stored_answer,
)
from tests.conftest import eventually, make_token
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.redis_server import RedisServer
from tests.server_process import ServerProcess, connect, free_port, several


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
        # Another user naming the turn: nothing of hers, over Redis or in MongoDB.
        bob = {"Authorization": f"Bearer {make_token('bob')}"}
        async with session.post(f"{b.base_url}/api/turns/{turn_id}/cancel", headers=bob) as sent:
            assert sent.status == 404
        assert (await here.until("turn.delta"))[-1]["type"] == "turn.delta", "still running"
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


async def test_a_stream_that_lost_its_beginning_is_served_from_mongodb(
    processes: list[ServerProcess],
    session: aiohttp.ClientSession,
    redis_server: RedisServer,
) -> None:
    a, b = processes
    here = await connect(session, a, AUTH)
    started = await here.turn_started("Count")
    await here.until("turn.delta")
    async with Redis.from_url(redis_server.url) as redis:

        async def written() -> bool:  # the turn's first events are in Redis
            return any([await redis.xlen(key) >= 3 async for key in redis.scan_iter("chat:turn:*")])

        assert await eventually(written)
        assert await redis.flushall()  # as a Redis restart would: the stream starts again
    await here.until("turn.delta")

    there = await connect(session, b, AUTH)
    await there.send({"type": "turn.resume", "turn_id": started["turn_id"], "after_seq": 1})
    followed = await there.until(*ENDINGS)

    whole = "".join(WORDS)
    assert followed[0]["type"] == "turn.snapshot", "the hole is answered from MongoDB"
    assert all(f["seq"] >= 1 for f in followed)
    assert as_client_sees(followed) == whole
    assert followed[-1]["type"] == "turn.done" and followed[-1]["message"]["content"] == whole
    await asyncio.gather(here.close(), there.close())


async def test_a_process_starts_and_answers_while_redis_is_unreachable(
    mongo_uri: str, fake: FakeAnthropic, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    fake.script(Reply.text(["Without ", "Redis."]))
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with several(
        ("a",), fake.base_url, tmp_path, mongo_uri, start=True, REDIS_URL=nowhere
    ) as (a,):
        ws = await connect(session, a, AUTH)
        frames = await ws.turn("Hello")
        await ws.close()
        assert frames[-1]["type"] == "turn.done"
        assert frames[-1]["message"]["content"] == "Without Redis."
        assert log_lines(a, "is unavailable") == 1


async def test_a_turns_stream_outlives_it_by_the_retention_then_expires(
    mongo_uri: str,
    fake: FakeAnthropic,
    redis_server: RedisServer,
    tmp_path: Path,
    session: aiohttp.ClientSession,
) -> None:
    """The expiry is renewed while the turn runs (it outlasts its 2 s TTL here), set to
    the retention at the end, and the stream then goes."""
    retention = 2
    fake.script(Reply.text(WORDS, delay=0.04))  # 3.2 s: longer than the TTL
    async with several(
        ("a",),
        fake.base_url,
        tmp_path,
        mongo_uri,
        start=True,
        REDIS_URL=redis_server.url,
        TURN_RETENTION_SECONDS=str(retention),
    ) as (a,):
        ws = await connect(session, a, AUTH)
        frames = await ws.turn("Count slowly")
        await ws.close()
    turn_id = frames[0]["turn_id"]
    key = stream_key(Identity("default", "alice"), turn_id)
    assert frames[-1]["type"] == "turn.done"
    async with Redis.from_url(redis_server.url) as redis:
        assert await redis.xlen(key) == frames[-1]["seq"], "every event, none lost to expiry"
        assert 0 < await redis.pttl(key) <= retention * 1000

        async def gone() -> bool:
            return not await redis.exists(key)

        assert await eventually(gone, timeout=retention + 3)
