"""The embedded database's process dies mid-turn: answers say so at once, it comes back alone.

`python -m server` with its embedded database; the test SIGKILLs the
database's child process (as the kernel's OOM killer would) and holds its
port for a moment, so the outage lasts long enough to be seen. Meanwhile REST
is a prompt 503 `storage_unavailable`, a new turn is refused before anything
is streamed, and the running turn streams on from memory; once the port is
free the supervisor restarts the database on it, the service is ready again
without a restart, and the stored answer is exactly what the client received.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import eventually, make_token, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.server_process import ServerProcess, embedded_database_pid, process_env

AUTH = {"Authorization": f"Bearer {make_token('alice')}"}
# Bounds that tell the request deadline (2.5 s) from the driver's own waits (10 s and
# more, then a 500): generous, as a loaded CI machine needs; the speed is not the point.
PROMPT_SECONDS = 8.0
HUNG_SECONDS = 8.0


@pytest.fixture
async def server(fake: FakeAnthropic, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = process_env(fake.base_url, tmp_path / "data", LOG_LEVEL="INFO")
    child = ServerProcess(env, tmp_path / "server.log")
    yield child
    await child.stop()


async def hold_port(port: int, within: float = 2.0) -> asyncio.Server:
    """Take the port as soon as it is free: a listener that hangs up on every connection."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await asyncio.start_server(_hang_up, "127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.005)


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def timed_get(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    async with session.get(url, headers=AUTH) as response:
        body = await response.json(content_type=None)
        return response.status, body, time.monotonic() - started


class StreamingTurn:
    """A turn started over a WebSocket whose frames are read in the background, so the
    test can break the database while it streams and check its ending afterwards."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, session: aiohttp.ClientSession, server: ServerProcess) -> StreamingTurn:
        """Started, and five deltas in: the answer is streaming."""
        ws = await session.ws_connect(f"{server.base_url}/ws", headers=AUTH)
        assert (await ws.receive_json(timeout=10))["type"] == "ready"
        await ws.send_json({"type": "turn.start", "turn_id": new_turn_id(), "content": "Talk"})
        turn = cls(ws)
        assert await eventually(lambda: turn._deltas(5))
        return turn

    async def _read(self) -> None:
        while not self.frames or self.frames[-1]["type"] not in ("turn.done", "turn.error"):
            self.frames.append(await self.ws.receive_json(timeout=60))

    async def _deltas(self, count: int) -> bool:
        return sum(1 for f in self.frames if f["type"] == "turn.delta") >= count

    async def ended_stored_whole(
        self, session: aiohttp.ClientSession, server: ServerProcess, answer: str
    ) -> None:
        """The turn ended `turn.done` with every word, and the store holds exactly that."""
        await asyncio.wait_for(self.reader, 60)
        await self.ws.close()
        done = self.frames[-1]
        assert done["type"] == "turn.done", done
        received = "".join(f["text"] for f in self.frames if f["type"] == "turn.delta")
        assert received == answer and done["message"]["content"] == answer
        url = f"{server.base_url}/api/conversations/{self.frames[0]['conversation_id']}/messages"
        async with session.get(url, headers=AUTH) as response:
            assert response.status == 200, await response.text()
            stored = (await response.json())["items"]
        assert [(m["role"], m["status"], m["content"]) for m in stored] == [
            ("user", "complete", "Talk"),
            ("assistant", "complete", answer),
        ]


async def test_a_killed_embedded_database_is_restarted_and_nothing_sent_is_lost(
    server: ServerProcess, session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    await server.start(session)
    assert server.process is not None
    log_text = server.log_path.read_text()
    port = int(
        re.findall(r"embedded MongoDB-compatible database at mongodb://[^:]+:(\d+)", log_text)[0]
    )
    words = [f"w{index} " for index in range(120)]
    fake.script(Reply.text(words, delay=0.05))  # about 6 s of answer
    turn = await StreamingTurn.start(session, server)

    database = embedded_database_pid(server.process.pid)
    os.kill(database, signal.SIGKILL)
    holder = await hold_port(port)
    try:
        status, body, elapsed = await timed_get(session, f"{server.base_url}/api/conversations")
        assert (status, body["code"]) == (503, "storage_unavailable"), body
        assert elapsed < PROMPT_SECONDS
        status, body, elapsed = await timed_get(session, f"{server.base_url}/readyz")
        assert (status, body["code"], elapsed < PROMPT_SECONDS) == (
            503,
            "storage_unavailable",
            True,
        )
        assert (await timed_get(session, f"{server.base_url}/healthz"))[0] == 200
        # A new turn is refused before its stream opens, with nothing kept.
        refused_id = new_turn_id()
        async with session.post(
            f"{server.base_url}/api/turns",
            json={"turn_id": refused_id, "content": "Now?"},
            headers=AUTH,
        ) as response:
            assert response.status == 503, await response.text()
            assert (await response.json(content_type=None))["code"] == "storage_unavailable"
        # The same over WebSocket: an `error` frame, not a turn.
        other = await session.ws_connect(f"{server.base_url}/ws", headers=AUTH)
        assert (await other.receive_json(timeout=10))["type"] == "ready"
        await other.send_json({"type": "turn.start", "turn_id": refused_id, "content": "Now?"})
        refusal = await other.receive_json(timeout=10)
        assert (refusal["type"], refusal["code"]) == ("error", "storage_unavailable"), refusal
        await other.close()
    finally:
        holder.close()
        await holder.wait_closed()

    async def ready() -> bool:
        return (await timed_get(session, f"{server.base_url}/readyz"))[0] == 200

    assert await eventually(ready, timeout=20, interval=0.2), server.log_path.read_text()[-3000:]
    assert embedded_database_pid(server.process.pid) != database
    await turn.ended_stored_whole(session, server, "".join(words))
    # The refused turn left nothing behind: the same id may be sent again.
    async with session.get(f"{server.base_url}/api/turns/{refused_id}", headers=AUTH) as response:
        assert response.status == 404
    assert "restarting it on port" in server.log_path.read_text()


async def test_a_hung_database_is_answered_within_seconds_and_a_running_turn_still_ends_stored(
    server: ServerProcess, session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    """SIGSTOP: the database's process alive, its sockets open, nothing answered. Every
    request still answers (503 `storage_unavailable`) within a few seconds, not the
    24 s it took; once it resumes, the turn that ran meanwhile is stored whole."""
    server.env["STORAGE_TIMEOUT_SECONDS"] = "2.5"  # the default, which the suite's env raises
    await server.start(session)
    assert server.process is not None
    words = [f"w{index} " for index in range(100)]
    fake.script(Reply.text(words, delay=0.05))  # about 5 s of answer
    turn = await StreamingTurn.start(session, server)

    database = embedded_database_pid(server.process.pid)
    os.kill(database, signal.SIGSTOP)
    try:
        for path in ("/api/conversations", "/api/search?q=soup", f"/api/turns/{new_turn_id()}"):
            status, body, elapsed = await timed_get(session, f"{server.base_url}{path}")
            assert (status, body["code"]) == (503, "storage_unavailable"), (path, body)
            assert elapsed < HUNG_SECONDS, (path, elapsed)
        refused_id = new_turn_id()
        started = time.monotonic()
        async with session.post(
            f"{server.base_url}/api/turns",
            json={"turn_id": refused_id, "content": "Now?"},
            headers=AUTH,
        ) as response:
            assert response.status == 503, await response.text()
            assert (await response.json(content_type=None))["code"] == "storage_unavailable"
        assert time.monotonic() - started < HUNG_SECONDS
        other = await session.ws_connect(f"{server.base_url}/ws", headers=AUTH)
        assert (await other.receive_json(timeout=10))["type"] == "ready"
        started = time.monotonic()
        await other.send_json({"type": "turn.start", "turn_id": new_turn_id(), "content": "Hm?"})
        refusal = await other.receive_json(timeout=10)
        assert (refusal["type"], refusal["code"]) == ("error", "storage_unavailable"), refusal
        assert time.monotonic() - started < HUNG_SECONDS
        await other.close()
    finally:
        os.kill(database, signal.SIGCONT)

    await turn.ended_stored_whole(session, server, "".join(words))

    async def nothing_left_of(turn_id: str) -> bool:
        async with session.get(f"{server.base_url}/api/turns/{turn_id}", headers=AUTH) as r:
            return r.status == 404  # a refused start was undone once the database answered

    assert await eventually(lambda: nothing_left_of(refused_id), timeout=10)
