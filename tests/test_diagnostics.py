"""`kill -USR1 <pid>` writes every task of the service, and where it waits, to its log.

A real `python -m server` process gets the signal while a turn streams; the
dump must name that turn's task and follow its awaits down into the model
stream (where a stuck turn would be found), and the process must serve on.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import eventually, make_token, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.server_process import ServerProcess, process_env

AUTH = {"Authorization": f"Bearer {make_token('alice')}"}


@pytest.fixture
async def server(fake: FakeAnthropic, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    child = ServerProcess(process_env(fake.base_url, tmp_path / "data"), tmp_path / "server.log")
    yield child
    await child.stop()


async def test_sigusr1_logs_each_task_and_where_it_waits(
    server: ServerProcess, fake: FakeAnthropic, session: aiohttp.ClientSession
) -> None:
    fake.script(Reply.endless(chunk="tick ", delay=0.02))
    await server.start(session)
    assert server.process is not None
    ws = await session.ws_connect(f"{server.base_url}/ws", headers=AUTH)
    assert (await ws.receive_json(timeout=10))["type"] == "ready"
    turn_id = new_turn_id()
    await ws.send_json({"type": "turn.start", "turn_id": turn_id, "content": "Go on"})
    while (await ws.receive_json(timeout=10))["type"] != "turn.delta":
        pass

    os.kill(server.process.pid, signal.SIGUSR1)

    async def dumped() -> list[str]:
        lines = server.log_path.read_text().splitlines()
        start = next((i for i, line in enumerate(lines) if "SIGUSR1:" in line), None)
        return [] if start is None else lines[start:]

    dump = await eventually(dumped)
    assert dump, server.log_path.read_text()[-2000:]
    turn = next(line for line in dump if f"turn:{turn_id} [pending]" in line)
    assert "TurnLife._run" in turn and "ClaudeModel.stream" in turn, turn
    assert turn.rstrip().endswith("<Future>"), turn  # down to what it waits on
    assert any(line.lstrip().startswith("checkpoints [pending]") for line in dump), dump
    # The process serves on, the turn streams on.
    assert (await ws.receive_json(timeout=10))["type"] == "turn.delta"
    async with session.get(f"{server.base_url}/healthz") as health:
        assert health.status == 200
    await ws.send_json({"type": "turn.cancel", "turn_id": turn_id})
    await ws.close()
