"""Several `python -m server` processes on one database, as behind a load balancer.

Real processes, not two apps in one loop: each has its own engine, memory and
turn logs, and they meet only in MongoDB. Here the sweep, cross-process cancel
and the replay poll run exactly as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import eventually, make_token, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.server_process import ServerProcess, connect, followed_elsewhere, several
from tests.sse_client import SseReader

AUTH = {"Authorization": f"Bearer {make_token('alice')}"}
ENDINGS = ("turn.done", "turn.cancelled", "turn.error")


@pytest.fixture
async def processes(
    mongo_uri: str, fake: FakeAnthropic, tmp_path: Path
) -> AsyncIterator[list[ServerProcess]]:
    """Two processes sharing the test's database; started by the test."""
    names = ("a", "b")
    async with several(names, fake.base_url, tmp_path, mongo_uri, start=False) as started:
        yield started


async def test_resume_and_cancel_of_a_turn_running_in_another_process(
    processes: list[ServerProcess], session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    a, b = processes
    await asyncio.gather(a.start(session), b.start(session))
    fake.script(Reply.endless(chunk="tick ", delay=0.01))
    # Followed from the other process: through the database, as snapshots.
    here, started, there = await followed_elsewhere(session, a, b, AUTH)
    turn_id = started["turn_id"]
    snapshots = [await there.recv() for _ in range(2)]
    assert [s["type"] for s in snapshots] == ["turn.snapshot", "turn.snapshot"]
    first, second = (s["message"]["content"] for s in snapshots)
    assert second.startswith(first) and len(second) > len(first), "the poll follows the text"

    # Cancelled from the other process: the owner stops at its next checkpoint.
    await there.send({"type": "turn.cancel", "turn_id": turn_id})
    ending_here = (await here.until(*ENDINGS))[-1]
    ending_there = (await there.until(*ENDINGS))[-1]

    assert ending_here["type"] == ending_there["type"] == "turn.cancelled"
    assert ending_there["message"]["content"] == ending_here["message"]["content"]
    assert await fake.requests[0].wait_finished(within=5)
    assert fake.requests[0].closed_by_client.is_set()
    async with session.get(f"{b.base_url}/api/turns/{turn_id}", headers=AUTH) as response:
        assert (await response.json())["status"] == "cancelled"
    await here.close()
    await there.close()


async def test_the_sweep_of_a_live_process_recovers_a_killed_ones_turn(
    processes: list[ServerProcess], session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    a, b = processes
    await asyncio.gather(a.start(session), b.start(session))
    fake.script(Reply.endless(chunk="tick ", delay=0.01))
    ws = await connect(session, a, AUTH)
    started = await ws.turn_started("Count")
    turn_id, conversation_id = started["turn_id"], started["conversation_id"]
    messages = f"{b.base_url}/api/conversations/{conversation_id}/messages"

    async def checkpointed() -> str:
        async with session.get(messages, headers=AUTH) as response:
            answer = (await response.json())["items"][-1]
        return str(answer["content"]) if answer["status"] == "streaming" else ""

    assert await eventually(checkpointed)
    await a.kill()
    await ws.close()

    async def swept() -> bool:  # by process b, once a's lease (1 s) ran out
        async with session.get(f"{b.base_url}/api/turns/{turn_id}", headers=AUTH) as response:
            return bool((await response.json())["status"] == "interrupted")

    assert await eventually(swept, timeout=10, interval=0.2)
    async with session.get(messages, headers=AUTH) as response:
        answer = (await response.json())["items"][-1]
    assert answer["status"] == "interrupted"
    assert answer["error"]["code"] == "interrupted"
    assert answer["content"].startswith("tick ")
    # The conversation is free again: process b answers on it.
    fake.script(Reply.text(["after ", "the crash"]))
    async with session.post(
        f"{b.base_url}/api/turns",
        json={"turn_id": new_turn_id(), "conversation_id": conversation_id, "content": "Again"},
        headers=AUTH,
    ) as response:
        events = await SseReader(response).until()
    assert events[-1].event == "turn.done"
    assert events[-1].data["message"]["content"] == "after the crash"
