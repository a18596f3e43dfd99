"""A cancel told before its ending is stored, durable through the ending journal.

The database sits behind `SlowDatabase`, so that storing an ending takes
longer than `CANCEL_ACK_SECONDS`: the cancel is then acknowledged from the
process's journal (server/turns/journal.py) while the database still shows
the answer streaming, is stored when the database answers, and survives a
SIGKILL between the two: the next start stores what the user was told.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from tests.conftest import (
    Service,
    eventually,
    make_token,
    new_turn_id,
    with_database,
)
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.server_process import ServerProcess, process_env
from tests.slow_database import SlowDatabase, relayed

ACK = "0.05"  # seconds a cancel waits for its store before the journal answers
AUTH = {"Authorization": f"Bearer {make_token('alice')}"}


@pytest.fixture
async def database(mongo_server_uri: str) -> AsyncIterator[SlowDatabase]:
    async with relayed(mongo_server_uri) as slow:
        yield slow


def proxied(database: SlowDatabase, name: str) -> str:
    return with_database(f"mongodb://127.0.0.1:{database.port}/?directConnection=true", name)


@pytest.fixture
async def direct(mongo_server_uri: str) -> AsyncIterator[Any]:
    """The test database read past the slow relay: what is stored, now."""
    name = f"test_journal_{uuid.uuid4().hex[:12]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_server_uri, tz_aware=True)
    yield client[name]
    await client.drop_database(name)
    await client.close()


async def cancel_mid_answer(ws: Any, turn_id: str) -> tuple[str, dict[str, Any]]:
    """Read until five ticks, cancel; the text received and the terminal frame."""
    received = ""
    while received.count("tick") < 5:
        frame = await ws.receive_json(timeout=10)
        if frame["type"] == "turn.delta":
            received += frame["text"]
    await ws.send_json({"type": "turn.cancel", "turn_id": turn_id})
    while True:
        frame = await ws.receive_json(timeout=10)
        if frame["type"] == "turn.delta":
            received += frame["text"]
        elif frame["type"] in ("turn.cancelled", "turn.done", "turn.error"):
            return received, frame


async def test_a_cancel_is_told_from_the_journal_while_the_store_is_slow(
    env: dict[str, str], fake: FakeAnthropic, database: SlowDatabase, direct: Any
) -> None:
    env.update(MONGODB_URI=proxied(database, direct.name), CANCEL_ACK_SECONDS=ACK)
    service = await Service(env, fake).start()
    try:
        fake.script(Reply.endless(chunk="tick ", delay=0.01))
        ws = await service.ws()
        turn_id = new_turn_id()
        await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Count for me"})
        started = await ws.recv()
        database.delay = 0.5  # every command answered late: the store takes ~1.5 s
        received, ended = await cancel_mid_answer(ws.raw, turn_id)

        assert ended["type"] == "turn.cancelled", ended
        assert ended["message"]["status"] == "cancelled"
        assert ended["message"]["content"] == received
        # Told before stored: the database still has the answer streaming...
        answer_id = ended["message"]["id"]
        stored = await direct.messages.find_one({"_id": answer_id})
        assert stored["status"] == "streaming", stored
        # ...and the journal holds the ending.
        (journal,) = (Path(env["DATA_DIR"]) / "endings").glob("*.jsonl")
        assert turn_id.encode() in journal.read_bytes()

        # A next question in the conversation waits for that store, then runs.
        fake.script(Reply.text(["Again."]))
        conversation_id = started["conversation_id"]
        frames = await ws.turn("And now?", conversation_id=conversation_id)
        assert frames[-1]["type"] == "turn.done", frames[-1]
        database.delay = 0.0
        stored = await direct.messages.find_one({"_id": answer_id})
        assert (stored["status"], stored["content"]) == ("cancelled", received)
        turn = await direct.turns.find_one({"turn_id": turn_id})
        assert turn["status"] == "cancelled"
        await ws.close()
    finally:
        database.delay = 0.0
        await service.close()
    # Stored, so settled: a clean stop leaves no journal behind.
    assert list((Path(env["DATA_DIR"]) / "endings").glob("*.jsonl")) == []


async def test_a_cancel_told_before_a_crash_is_stored_at_the_next_start(
    fake: FakeAnthropic,
    database: SlowDatabase,
    direct: Any,
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    env = process_env(
        fake.base_url,
        tmp_path / "data",
        MONGODB_URI=proxied(database, direct.name),
        CANCEL_ACK_SECONDS=ACK,
    )
    server = ServerProcess(env, tmp_path / "server.log")
    await server.start(session)
    try:
        fake.script(Reply.endless(chunk="tick ", delay=0.01))
        ws = await session.ws_connect(f"{server.base_url}/ws", headers=AUTH)
        assert (await ws.receive_json(timeout=10))["type"] == "ready"
        turn_id = new_turn_id()
        await ws.send_json({"type": "turn.start", "turn_id": turn_id, "content": "Count"})
        started = await ws.receive_json(timeout=10)
        assert started["type"] == "turn.started"
        database.hung = True  # nothing answered: the ending cannot be stored
        received, ended = await cancel_mid_answer(ws, turn_id)
        assert ended["type"] == "turn.cancelled", ended
        assert ended["message"]["content"] == received

        await server.kill()  # told, not stored
        await ws.close()
        database.hung = False
        answer_id = ended["message"]["id"]
        assert (await direct.messages.find_one({"_id": answer_id}))["status"] == "streaming"

        await server.start(session)  # the journal is replayed before anything else

        async def stored() -> dict[str, Any] | None:
            message: dict[str, Any] | None = await direct.messages.find_one({"_id": answer_id})
            return message if message and message["status"] == "cancelled" else None

        message = await eventually(stored, timeout=10)
        assert message is not None and message["content"] == received
        turn = await direct.turns.find_one({"turn_id": turn_id})
        assert turn["status"] == "cancelled"
        conversation = await direct.conversations.find_one({"_id": started["conversation_id"]})
        assert conversation["running_turn_id"] is None  # the slot is free again
        # The dead process's journal is gone; the new process's own holds nothing.
        (journal,) = (tmp_path / "data" / "endings").glob("*.jsonl")
        assert journal.read_bytes() == b""
    finally:
        await server.stop()
