"""Per-user limits across processes that share one `redis-server` (REDIS_URL).

Without Redis each process counts its own (documented); with it a user's
connections, running turns and starts are counted once for all processes,
and the places of a process killed without a word are free again after the
lease (TURN_LEASE_SECONDS, 1 s here).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.api_client import expect_problem
from tests.cluster_client import AUTH
from tests.conftest import eventually, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.redis_server import RedisServer
from tests.server_process import ServerProcess, connect, several


@pytest.fixture
async def processes(
    mongo_uri: str, fake: FakeAnthropic, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[list[ServerProcess]]:
    async with several(
        ("a", "b"),
        fake.base_url,
        tmp_path,
        mongo_uri,
        start=True,
        REDIS_URL=redis_server.url,
        MAX_CONNECTIONS_PER_USER="2",
        MAX_TURNS_PER_USER="1",
        TURNS_PER_MINUTE="3",
    ) as started:
        yield started


async def refused(process: ServerProcess, session: aiohttp.ClientSession, code: str) -> None:
    """A WebSocket to `process` refused with `code` (an error frame, then the close)."""
    raw = await session.ws_connect(f"{process.base_url}/ws", headers=AUTH)
    frame = await raw.receive_json(timeout=10)
    assert (frame["type"], frame["code"]) == ("error", code), frame
    await raw.close()


async def post_turn(
    session: aiohttp.ClientSession, process: ServerProcess
) -> aiohttp.ClientResponse:
    body = {"turn_id": new_turn_id(), "content": "Hello"}
    return await session.post(f"{process.base_url}/api/turns", json=body, headers=AUTH)


async def test_connections_and_turns_are_counted_once_for_every_process(
    processes: list[ServerProcess], session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    a, b = processes
    fake.script(Reply.endless(chunk="tick ", delay=0.02))
    on_a = await connect(session, a, AUTH)
    started = await on_a.turn_started("Long")
    on_b = await connect(session, b, AUTH)

    await refused(a, session, "too_many_connections")  # two open: one on each process
    await refused(b, session, "too_many_connections")
    await on_a.close()
    await on_b.send({"type": "turn.start", "turn_id": new_turn_id(), "content": "Mine too"})
    frame = (await on_b.until("error"))[-1]
    assert frame["code"] == "too_many_turns", frame  # its one turn runs on the other process

    await on_b.send({"type": "turn.cancel", "turn_id": started["turn_id"]})

    async def turn_ended() -> bool:
        response = await session.get(f"{b.base_url}/api/turns/{started['turn_id']}", headers=AUTH)
        return (await response.json())["status"] != "running"

    assert await eventually(turn_ended, timeout=10)
    assert (await on_b.turn("Now it fits"))[-1]["type"] == "turn.done"
    # Three starts a minute in all: the long one on a, and two on b.
    assert (await on_b.turn("Third"))[-1]["type"] == "turn.done"
    on_a = await connect(session, a, AUTH)
    refusal = (await on_a.turn("Fourth"))[-1]
    assert (refusal["type"], refusal["code"]) == ("error", "rate_limited"), refusal
    await expect_problem(await post_turn(session, a), 429, "too_many_connections")
    await on_a.close()
    await on_b.close()


async def test_a_killed_process_gives_its_places_back_after_the_lease(
    processes: list[ServerProcess], session: aiohttp.ClientSession
) -> None:
    a, b = processes
    held = [await connect(session, a, AUTH), await connect(session, a, AUTH)]
    await refused(b, session, "too_many_connections")

    assert a.process is not None
    os.kill(a.process.pid, signal.SIGKILL)
    await a.process.wait()

    async def room_again() -> bool:
        raw = await session.ws_connect(f"{b.base_url}/ws", headers=AUTH)
        frame = await raw.receive_json(timeout=10)
        await raw.close()
        return frame["type"] == "ready"

    assert await eventually(room_again, timeout=15, interval=0.3)
    await asyncio.gather(*(ws.raw.close() for ws in held), return_exceptions=True)
