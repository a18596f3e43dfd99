"""SIGTERM drains: running turns finish (or stop, kept as `interrupted`), then sockets close 1012.

`python -m server` in its own process, because only a process gets signals:
the client must see each turn's final event and a 1012 close (reconnect and
resume), the process must exit 0 within the drain plus a few seconds, and no
answer may be left `streaming`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import make_token, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.server_process import ServerProcess, process_env

AUTH = {"Authorization": f"Bearer {make_token('alice')}"}
DRAIN_SECONDS = 2.0
# The drain, the endings' writes, closing the database: generous, but far below
# the 36 s of streaming on and the 1006 drop this replaced.
EXIT_WITHIN = DRAIN_SECONDS + 8.0


@pytest.fixture
async def server(fake: FakeAnthropic, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = process_env(fake.base_url, tmp_path / "data", SHUTDOWN_DRAIN_SECONDS=str(DRAIN_SECONDS))
    child = ServerProcess(env, tmp_path / "server.log")
    yield child
    await child.stop()


async def start_turn(
    session: aiohttp.ClientSession, server: ServerProcess
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    ws = await session.ws_connect(f"{server.base_url}/ws", headers=AUTH)
    assert (await ws.receive_json(timeout=10))["type"] == "ready"
    await ws.send_json({"type": "turn.start", "turn_id": new_turn_id(), "content": "Go on"})
    started = await ws.receive_json(timeout=10)
    assert started["type"] == "turn.started", started
    return ws, started


async def read_to_close(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Every frame until the server closes the socket; the close itself last, as a dict."""
    frames: list[dict[str, Any]] = []
    while True:
        message = await ws.receive(timeout=EXIT_WITHIN + 5)
        if message.type == aiohttp.WSMsgType.TEXT:
            frames.append(message.json())
        else:
            frames.append({"close": ws.close_code, "kind": message.type.name})
            return frames


async def terminate(server: ServerProcess) -> tuple[int, float]:
    assert server.process is not None
    started = time.monotonic()
    server.process.terminate()
    code = await asyncio.wait_for(server.process.wait(), EXIT_WITHIN + 10)
    return code, time.monotonic() - started


async def stored_answer(server: ServerProcess, conversation_id: str) -> dict[str, Any]:
    """Read back after a restart: what the stopped process left in its database."""
    async with aiohttp.ClientSession() as session:
        await server.start(session)
        async with session.get(
            f"{server.base_url}/api/conversations/{conversation_id}/messages", headers=AUTH
        ) as response:
            assert response.status == 200, await response.text()
            items: list[dict[str, Any]] = (await response.json())["items"]
    return items[-1]


async def test_sigterm_interrupts_a_turn_that_outlasts_the_drain_and_closes_1012(
    server: ServerProcess, session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    await server.start(session)
    fake.script(Reply.endless(chunk="tick ", delay=0.02))
    ws, started = await start_turn(session, server)
    reader = asyncio.create_task(read_to_close(ws))
    await asyncio.sleep(0.3)

    code, elapsed = await terminate(server)
    frames = await reader

    assert code == 0, server.log_path.read_text()[-2000:]
    assert DRAIN_SECONDS <= elapsed < EXIT_WITHIN, elapsed
    *events, closed = frames
    assert closed["close"] == 1012, closed
    ending = events[-1]
    assert (ending["type"], ending["code"], ending["retryable"]) == (
        "turn.error",
        "interrupted",
        True,
    )
    received = "".join(e["text"] for e in events if e["type"] == "turn.delta")
    assert received.startswith("tick ")
    assert ending["partial"]["content"] == received
    answer = await stored_answer(server, started["conversation_id"])
    assert answer["status"] == "interrupted"
    assert answer["error"]["code"] == "interrupted"
    assert answer["content"] == received


async def test_a_turn_that_ends_within_the_drain_is_done_and_stored(
    server: ServerProcess, session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    await server.start(session)
    words = [f"w{index} " for index in range(20)]
    fake.script(Reply.text(words, delay=0.05))  # about 1 s: inside the 2 s drain
    ws, started = await start_turn(session, server)
    reader = asyncio.create_task(read_to_close(ws))
    await asyncio.sleep(0.1)

    code, _ = await terminate(server)
    *events, closed = await reader

    assert code == 0
    assert closed["close"] == 1012, closed
    assert events[-1]["type"] == "turn.done", events[-1]
    assert "".join(e["text"] for e in events if e["type"] == "turn.delta") == "".join(words)
    answer = await stored_answer(server, started["conversation_id"])
    assert (answer["status"], answer["content"]) == ("complete", "".join(words))
