"""A busy database is waited for; a hung one is answered 503 within the deadline.

The service sees both as "no reply yet". It tells them apart by a ping on a
connection of its own (server/storage/deadline.py): a busy database answers
it, a hung one does not. The database here is behind `SlowDatabase`, which
holds every command for a while (busy) or for ever (hung); the deadline is
cut to 0.5 s so that the tests are short.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import Service, with_database
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.slow_database import SlowDatabase, relayed

DEADLINE = 0.5
BUSY = 1.5  # three deadlines: waited for only because the database still answers


@pytest.fixture
async def database(mongo_server_uri: str) -> AsyncIterator[SlowDatabase]:
    async with relayed(mongo_server_uri) as slow:
        yield slow


@pytest.fixture
async def service(
    env: dict[str, str], fake: FakeAnthropic, database: SlowDatabase
) -> AsyncIterator[Service]:
    name = urlsplit(env["MONGODB_URI"]).path.lstrip("/")
    proxied = f"mongodb://127.0.0.1:{database.port}/?directConnection=true"
    env.update(MONGODB_URI=with_database(proxied, name), STORAGE_TIMEOUT_SECONDS=str(DEADLINE))
    running = Service(env, fake)
    await running.start()
    yield running
    database.delay, database.hung = 0.0, False
    await running.close()


async def _extended(service: Service) -> float:
    async with service.http.get("/metrics") as response:
        text = await response.text()
    line = next(
        line for line in text.splitlines() if line.startswith("chat_storage_deadlines_extended ")
    )
    return float(line.split()[1])


async def test_a_busy_database_is_waited_for_past_the_deadline(
    service: Service, database: SlowDatabase, fake: FakeAnthropic
) -> None:
    database.delay = BUSY
    started = time.monotonic()
    async with service.http.get("/api/conversations", headers=service.headers()) as response:
        assert response.status == 200, await response.text()
    assert time.monotonic() - started >= BUSY  # answered late, not refused
    assert await _extended(service) >= 1

    # A turn's start waits too, and the turn runs and is stored.
    fake.script(Reply.text(["Still ", "here."]))
    ws = await service.ws()
    database.delay = 2 * DEADLINE
    started_frame = await ws.turn_started("Slow day?")
    database.delay = 0.0
    frames = await ws.until("turn.done", "turn.error", "error")
    assert frames[-1]["type"] == "turn.done", frames
    turn_id = started_frame["turn_id"]
    stored = await service.db.messages.find_one({"turn_id": turn_id, "role": "assistant"})
    assert stored is not None and stored["content"] == "Still here.", stored
    assert database.held > 0


async def test_a_hung_database_is_answered_503_within_the_deadline(
    service: Service, database: SlowDatabase
) -> None:
    database.hung = True
    started = time.monotonic()
    async with service.http.get("/api/conversations", headers=service.headers()) as response:
        body = await response.json(content_type=None)
        assert (response.status, body["code"]) == (503, "storage_unavailable"), body
    assert time.monotonic() - started < DEADLINE + 1.0
