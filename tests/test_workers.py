"""`WEB_CONCURRENCY=2`: two worker processes on one port under `python -m server`.

Real processes: the supervisor, its workers and the embedded database it starts.
The kernel chooses the worker of each new connection (SO_REUSEPORT); `/healthz`
names the process that answered, so a test learns which worker a keep-alive
connection reached and can send its next requests through that worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import PUSHES, WS, eventually, make_token, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.server_process import ServerProcess, children, process_env
from tests.sse_client import SseReader, sse_text

AUTH = {"Authorization": f"Bearer {make_token('alice')}"}
ENDINGS = ("turn.done", "turn.cancelled", "turn.error")
DRAIN_SECONDS = 1.0
# New connections tried before concluding that the kernel never picks a second worker:
# each lands on either with about even odds, so this many never miss by chance.
CONNECTION_TRIES = 60


@pytest.fixture
async def server(fake: FakeAnthropic, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = process_env(
        fake.base_url,
        tmp_path / "data",
        WEB_CONCURRENCY="2",
        TURN_LEASE_SECONDS="1",
        SHUTDOWN_DRAIN_SECONDS=str(DRAIN_SECONDS),
    )
    process = ServerProcess(env, tmp_path / "server.log")
    yield process
    await process.stop()


async def start(server: ServerProcess, session: aiohttp.ClientSession) -> None:
    """Started, and every worker listening: `/healthz` answers as soon as the first does,
    the supervisor's banner once all have."""
    await server.start(session)

    async def all_listening() -> bool:
        return "(2 workers)" in server.log_path.read_text()

    assert await eventually(all_listening, timeout=30), server.log_path.read_text()


@asynccontextmanager
async def pinned(
    server: ServerProcess, *, not_on: int | None = None
) -> AsyncIterator[tuple[aiohttp.ClientSession, int]]:
    """A session whose one keep-alive connection reached a worker (not `not_on`): its pid."""
    for _ in range(CONNECTION_TRIES):
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        async with session.get(f"{server.base_url}/healthz") as response:
            pid = int((await response.json())["pid"])
        if pid != not_on:
            try:
                yield session, pid
            finally:
                await session.close()
            return
        await session.close()
    raise AssertionError(f"{CONNECTION_TRIES} connections, all to worker {not_on}")


async def answering_pids(server: ServerProcess, tries: int = CONNECTION_TRIES) -> set[int]:
    """The pids that answer `/healthz` on new connections, each its own."""
    seen: set[int] = set()
    for _ in range(tries):
        try:
            async with (
                aiohttp.ClientSession() as fresh,
                fresh.get(f"{server.base_url}/healthz") as got,
            ):
                assert got.status == 200
                seen.add(int((await got.json())["pid"]))
        except aiohttp.ClientConnectionError:
            continue  # queued at a worker as it died (Linux resets those): not an answer
    return seen


async def start_sse_turn(session: aiohttp.ClientSession, server: ServerProcess) -> SseReader:
    response = await session.post(
        f"{server.base_url}/api/turns",
        json={"turn_id": new_turn_id(), "content": "Count"},
        headers=AUTH,
    )
    assert response.status == 200, await response.text()
    return SseReader(response)


async def stored_answer(server: ServerProcess, conversation_id: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{server.base_url}/api/conversations/{conversation_id}/messages", headers=AUTH
        ) as response,
    ):
        assert response.status == 200, await response.text()
        items: list[dict[str, Any]] = (await response.json())["items"]
    return items[-1]


async def test_both_workers_answer_on_one_port_and_are_the_supervisors_children(
    server: ServerProcess, session: aiohttp.ClientSession
) -> None:
    await start(server, session)
    assert server.process is not None

    pids = await answering_pids(server)

    assert len(pids) == 2, pids
    assert pids < set(children(server.process.pid)), "workers of this supervisor"
    assert server.process.pid not in pids, "the supervisor serves nothing itself"


async def test_a_turn_is_followed_and_cancelled_through_the_other_worker_and_stored_whole(
    server: ServerProcess, session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    await start(server, session)
    fake.script(Reply.endless(chunk="tick ", delay=0.01))
    async with pinned(server) as (owner, owner_pid):
        here = await start_sse_turn(owner, server)
        started = await here.next()
        assert started is not None and started.event == "turn.started"
        turn_id = started.data["turn_id"]
        early_events = await here.until("turn.delta")

        # Followed through the worker that does not run it: snapshots from storage.
        async with pinned(server, not_on=owner_pid) as (follower, _):
            events = await follower.get(
                f"{server.base_url}/api/turns/{turn_id}/events?after_seq=1", headers=AUTH
            )
            there = SseReader(events)
            first, second = await there.next(), await there.next()
            assert first is not None and second is not None
            assert (first.event, second.event) == ("turn.snapshot", "turn.snapshot")
            earlier, later = (e.data["message"]["content"] for e in (first, second))
            assert later.startswith(earlier) and len(later) > len(earlier)

            # A new WebSocket, whichever worker the kernel gives it, resumes the turn too.
            socket = WS(await session.ws_connect(f"{server.base_url}/ws", headers=AUTH))
            assert (await socket.recv())["type"] == "ready"
            await socket.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": 0})

            # Cancelled through the other worker: the owner stops at its next checkpoint.
            async with pinned(server, not_on=owner_pid) as (canceller, _):
                cancel = f"{server.base_url}/api/turns/{turn_id}/cancel"
                async with canceller.post(cancel, headers=AUTH) as response:
                    assert response.status == 202, await response.text()

            owner_events = await here.until(*ENDINGS)
            ending_there = (await there.until(*ENDINGS))[-1]
            ending_socket = (await socket.until(*ENDINGS))[-1]
            await socket.close()

    ending_here = owner_events[-1]
    assert ending_here.event == ending_there.event == "turn.cancelled"
    assert ending_socket["type"] == "turn.cancelled"
    relayed = sse_text([*early_events, *owner_events])
    content = ending_here.data["message"]["content"]
    assert content.startswith("tick ") and content == relayed
    assert ending_there.data["message"]["content"] == content
    assert ending_socket["message"]["content"] == content
    answer = await stored_answer(server, started.data["conversation_id"])
    assert (answer["status"], answer["content"]) == ("cancelled", content)


async def test_a_killed_worker_is_started_again_and_its_turn_ends_interrupted(
    server: ServerProcess, session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    await start(server, session)
    before = await answering_pids(server)
    fake.script(Reply.endless(chunk="tick ", delay=0.01))
    async with pinned(server) as (owner, victim):
        reader = await start_sse_turn(owner, server)
        started = await reader.next()
        assert started is not None and started.event == "turn.started"
        turn_id, conversation_id = started.data["turn_id"], started.data["conversation_id"]

        async def checkpointed() -> bool:
            return bool((await stored_answer(server, conversation_id))["content"])

        assert await eventually(checkpointed, timeout=10)
        os.kill(victim, signal.SIGKILL)

        async def dead() -> bool:  # its socket closed: new connections go to the other
            return not running(victim)

        assert await eventually(dead, timeout=10)

    # The other worker serves meanwhile; a follower sees the turn end `interrupted` once
    # its lease (1 s) has run out and a sweep has recovered it.
    follower = WS(await session.ws_connect(f"{server.base_url}/ws", headers=AUTH))
    assert (await follower.recv())["type"] == "ready"
    await follower.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": 0})
    ending = (await follower.until(*ENDINGS, timeout=20))[-1]
    await follower.close()
    assert (ending["type"], ending["code"]) == ("turn.error", "interrupted")
    answer = await stored_answer(server, conversation_id)
    assert answer["status"] == "interrupted"
    assert answer["content"].startswith("tick ")

    # The supervisor started a worker in the killed one's place.
    async def replaced() -> set[int]:
        pids = await answering_pids(server, tries=20)
        return pids if len(pids) == 2 and victim not in pids else set()

    after = await eventually(replaced, timeout=30, interval=0.2)
    assert after and len(after & before) == 1, (before, after)
    assert f"(pid {victim}) died with exit code -9" in server.log_path.read_text()


async def test_sigterm_drains_every_worker_closes_1012_and_exits_0(
    server: ServerProcess, session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    await start(server, session)
    assert server.process is not None
    workers = await answering_pids(server)
    fake.script(*(Reply.endless(chunk="tick ", delay=0.02) for _ in range(4)))
    sockets = []
    for _ in range(4):  # a few connections, so that both workers most likely run a turn
        socket = WS(await session.ws_connect(f"{server.base_url}/ws", headers=AUTH))
        assert (await socket.recv())["type"] == "ready"
        await socket.send({"type": "turn.start", "turn_id": new_turn_id(), "content": "Go"})
        assert (await socket.recv())["type"] == "turn.started"
        await socket.until("turn.delta")
        sockets.append(socket)

    readers = [asyncio.create_task(read_to_close(socket)) for socket in sockets]
    server.process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(server.process.wait(), DRAIN_SECONDS + 15)

    assert code == 0, server.log_path.read_text()[-3000:]
    for frames, close_code in await asyncio.gather(*readers):
        assert (frames[-1]["type"], frames[-1]["code"]) == ("turn.error", "interrupted")
        assert close_code == 1012
    assert not [pid for pid in workers if alive(pid)], "no worker outlives the supervisor"


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie's sockets are closed, its parent not told yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def read_to_close(socket: WS) -> tuple[list[dict[str, Any]], int | None]:
    """Every frame until the server closes the socket, and its close code; the pushes of
    the other sockets' turns ending (the same user's) are set aside, as `WS` does."""
    frames: list[dict[str, Any]] = []
    while True:
        message = await socket.raw.receive(timeout=DRAIN_SECONDS + 15)
        if message.type != aiohttp.WSMsgType.TEXT:
            return frames, socket.raw.close_code
        if message.json()["type"] not in PUSHES:
            frames.append(message.json())
