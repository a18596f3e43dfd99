"""A process killed mid-turn: on restart its turn is `interrupted`, not `streaming` forever.

This runs the real `python -m server` as a child process and kills it with
SIGKILL, so nothing of ours gets to clean up. Without MONGODB_URI the child
uses its own embedded database file, which only it can use: start-up
recovers every running turn. With MONGODB_URI (a shared cluster) only turns
whose lease ran out are recovered, by the periodic sweep.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from tests.conftest import eventually, make_token, new_turn_id, with_database
from tests.fake_anthropic import FakeAnthropic, Reply, Text, ToolUse
from tests.server_process import ServerProcess, process_env
from tests.sse_client import SseReader

AUTH = {"Authorization": f"Bearer {make_token('alice')}"}


@pytest.fixture
async def server(fake: FakeAnthropic, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = process_env(fake.base_url, tmp_path / "data")
    shared = os.environ.get("MONGODB_URI")
    database = f"test_crash_{uuid.uuid4().hex[:12]}"
    if shared:
        env["MONGODB_URI"] = with_database(shared, database)
        env["TURN_LEASE_SECONDS"] = "1"
    child = ServerProcess(env, tmp_path / "server.log")
    yield child
    await child.stop()
    if shared:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(shared)
        await client.drop_database(database)
        await client.close()


async def messages_of(
    session: aiohttp.ClientSession, base_url: str, conversation_id: str
) -> list[dict[str, Any]]:
    async with session.get(
        f"{base_url}/api/conversations/{conversation_id}/messages", headers=AUTH
    ) as response:
        assert response.status == 200, await response.text()
        items: list[dict[str, Any]] = (await response.json())["items"]
        return items


async def turn_status(session: aiohttp.ClientSession, base_url: str, turn_id: str) -> str:
    async with session.get(f"{base_url}/api/turns/{turn_id}", headers=AUTH) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["status"])


async def test_turn_of_a_killed_process_is_interrupted_after_restart(
    server: ServerProcess, session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    await server.start(session)
    fake.script(Reply.endless(chunk="tick ", delay=0.01))
    turn_id = new_turn_id()
    ws = await session.ws_connect(f"{server.base_url}/ws", headers=AUTH)
    assert (await ws.receive_json(timeout=10))["type"] == "ready"
    await ws.send_json({"type": "turn.start", "turn_id": turn_id, "content": "Count for me"})
    started = await ws.receive_json(timeout=10)
    assert started["type"] == "turn.started"
    conversation_id = started["conversation_id"]
    received = ""
    while received.count("tick") < 5:
        frame = await ws.receive_json(timeout=10)
        assert frame["type"] == "turn.delta", frame
        received += frame["text"]

    async def checkpointed() -> str:
        answer = (await messages_of(session, server.base_url, conversation_id))[-1]
        assert answer["status"] == "streaming"
        return str(answer["content"])

    seen = await eventually(checkpointed)
    assert seen.startswith("tick ")

    await server.kill()
    await ws.close()
    assert await fake.requests[0].wait_finished(within=5)
    await server.start(session)

    async def recovered() -> bool:
        return await turn_status(session, server.base_url, turn_id) == "interrupted"

    assert await eventually(recovered, timeout=15, interval=0.2)
    question, answer = await messages_of(session, server.base_url, conversation_id)
    assert (question["role"], question["content"], question["status"]) == (
        "user",
        "Count for me",
        "complete",
    )
    assert answer["role"] == "assistant"
    assert answer["status"] == "interrupted"
    assert answer["error"]["code"] == "interrupted"
    assert answer["content"].startswith(seen)
    assert answer["content"] == "tick " * answer["content"].count("tick ")

    # The conversation's slot was released: a new turn on it runs to the end.
    async with session.post(
        f"{server.base_url}/api/turns",
        json={"turn_id": new_turn_id(), "conversation_id": conversation_id, "content": "Again"},
        headers=AUTH,
    ) as response:
        assert response.status == 200, await response.text()
        events = await SseReader(response).until()
    assert events[-1].event == "turn.done"
    assert events[-1].data["message"]["content"] == "Echo: Again"
    # A resume of the interrupted turn says how it ended, with its partial text.
    async with session.get(
        f"{server.base_url}/api/turns/{turn_id}/events",
        headers={**AUTH, "Last-Event-ID": "3"},
    ) as response:
        resumed = await SseReader(response).until()
    assert [e.event for e in resumed] == ["turn.snapshot", "turn.error"]
    assert resumed[-1].data["code"] == "interrupted"
    assert resumed[-1].data["partial"]["content"] == answer["content"]


async def test_a_process_killed_during_a_tool_round_leaves_the_rounds_so_far(
    server: ServerProcess, session: aiohttp.ClientSession, fake: FakeAnthropic
) -> None:
    server.env["CHAT_TOOLS"] = "tests.tools_for_tests"
    await server.start(session)
    fake.script(
        Reply.blocks(
            Text(["Let me wait. "]),
            ToolUse("toolu_k", "slow_tool", {"seconds": 60}),
            stop_reason="tool_use",
        )
    )
    turn_id = new_turn_id()
    ws = await session.ws_connect(f"{server.base_url}/ws", headers=AUTH)
    assert (await ws.receive_json(timeout=10))["type"] == "ready"
    await ws.send_json({"type": "turn.start", "turn_id": turn_id, "content": "Wait a minute"})
    started = await ws.receive_json(timeout=10)
    conversation_id = started["conversation_id"]
    while (await ws.receive_json(timeout=10))["type"] != "turn.tool_call":
        pass

    async def checkpointed() -> bool:
        answer = (await messages_of(session, server.base_url, conversation_id))[-1]
        return [b["type"] for b in answer["blocks"]] == ["text", "tool_use"]

    assert await eventually(checkpointed)
    await server.kill()
    await ws.close()
    await server.start(session)

    async def recovered() -> bool:
        return await turn_status(session, server.base_url, turn_id) == "interrupted"

    assert await eventually(recovered, timeout=15, interval=0.2)
    answer = (await messages_of(session, server.base_url, conversation_id))[-1]
    assert answer["status"] == "interrupted"
    assert answer["content"] == "Let me wait. "
    assert answer["blocks"] == [
        {"type": "text", "text": "Let me wait. "},
        {"type": "tool_use", "id": "toolu_k", "name": "slow_tool", "input": {"seconds": 60}},
    ]
    # The next turn's history answers the dangling call, so the API accepts it.
    async with session.post(
        f"{server.base_url}/api/turns",
        json={"turn_id": new_turn_id(), "conversation_id": conversation_id, "content": "Again"},
        headers=AUTH,
    ) as response:
        events = await SseReader(response).until()
    assert events[-1].event == "turn.done", events[-1]
    assert fake.requests[-1].rejected is None
    sent = fake.requests[-1].sent["messages"]
    assert sent[-1]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_k",
        "content": "The tool did not run: the answer was interrupted.",
        "is_error": True,
    }
