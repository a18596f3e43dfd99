"""Shared fixtures: a real service on a real port, a real database, a fake Claude.

The database is the embedded MongoDB wire-protocol server (one per test
session, one fresh database per test) or, when MONGODB_URI is set, that
server instead. The model provider is `tests.fake_anthropic`, reached by the
real `anthropic` SDK through ANTHROPIC_BASE_URL.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pymongo import AsyncMongoClient

from server.app import build_app
from server.config import Settings, load_settings
from server.storage.embedded import EmbeddedMongo
from server.transport.malformed import ProblemAppRunner
from tests.contract_check import CHECKED
from tests.fake_anthropic import FakeAnthropic
from tests.redis_server import REDIS_SERVER, RedisServer

# Fixtures in modules of their own: `faults` (fail points on the database server)
# and the browser tests' (a live service, Chromium).
pytest_plugins = ["tests.faults", "tests.browser_page"]

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256"
RECV_TIMEOUT = 10.0
# Frames pushed to every socket of a user when something changes elsewhere (the change feed).
PUSHES = frozenset({"conversation.changed", "conversation.deleted", "turn.running"})


def with_database(uri: str, name: str) -> str:
    """The same server URI, naming another database in its path."""
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def mongo_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """MONGODB_URI when set, else one embedded server for the whole session."""
    if os.environ.get("MONGODB_URI"):
        yield os.environ["MONGODB_URI"]
        return
    embedded = EmbeddedMongo(tmp_path_factory.mktemp("mongo") / "test.sqlite3")
    uri = embedded.start()
    yield uri
    embedded.stop()


@pytest.fixture
async def mongo_uri(mongo_server_uri: str) -> AsyncIterator[str]:
    """A fresh database per test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield with_database(mongo_server_uri, name)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_server_uri)
    await client.drop_database(name)
    await client.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    upstream = FakeAnthropic()
    await upstream.start()
    yield upstream
    await upstream.close()


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A real `redis-server` of the test's own, on a free port; skipped when not installed."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (`.ci/run` installs Debian's)")
    server = RedisServer(tmp_path / "redis")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def env(mongo_uri: str, fake: FakeAnthropic, tmp_path: Path) -> dict[str, str]:
    """The environment a test's service starts from; tests may change it first."""
    return {
        "MONGODB_URI": mongo_uri,
        "DATA_DIR": str(tmp_path / "data"),
        "JWT_SECRET": JWT_SECRET,
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": fake.base_url,
        "UPSTREAM_MAX_RETRIES": "0",
        "UPSTREAM_TIMEOUT_SECONDS": "5",
        "CHAT_MODELS": "claude-test-large,claude-test-small",
        "TITLE_MODEL": "claude-test-small",
        "CHECKPOINT_INTERVAL_SECONDS": "0.05",
        "TURN_LEASE_SECONDS": "5",
        # The test tools beside the built-in ones (get_weather answers the recorded tool_use).
        "CHAT_TOOLS": "tests.tools_for_tests",
        "TOOL_TIMEOUT_SECONDS": "2",
        "SHUTDOWN_DRAIN_SECONDS": "0",  # a test's service stops its turns at once
        # Bursts of turns queue on the embedded database of a loaded 2-core machine past
        # the 2.5 s default; the deadline itself is tested on a hung database.
        "STORAGE_TIMEOUT_SECONDS": "30",
        # A cancel is told once stored, as tests read it back at once; a cancel told from
        # the journal while the store is slow is tested with a slow database.
        "CANCEL_ACK_SECONDS": "30",
        # Counts arrive in the background after a turn: tests of the budget's arithmetic
        # stay deterministic on the estimate; tests/test_token_counts.py turns them on.
        "TOKEN_COUNTS": "estimate",
    }


class ServiceTestServer(TestServer):
    """aiohttp's TestServer with the runner `python -m server` uses: the same connections."""

    async def _make_runner(self, **kwargs: Any) -> ProblemAppRunner:
        return ProblemAppRunner(self.app, **kwargs)


class Service:
    """The service under test, on a real loopback port, restartable."""

    def __init__(self, env: dict[str, str], fake: FakeAnthropic) -> None:
        self.env = env
        self.fake = fake
        self.client: TestClient[Any, Any] | None = None
        self.settings: Settings | None = None
        self._db_client: AsyncMongoClient[dict[str, Any]] | None = None

    async def start(self) -> Service:
        self.settings = load_settings(self.env)
        # Every response and frame this client receives is checked against the documents.
        self.client = TestClient(ServiceTestServer(build_app(self.settings)), **CHECKED)
        await self.client.start_server()
        return self

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def reconfigure(self, **settings: str) -> None:
        """Restart with these environment settings changed, as an operator would."""
        self.env.update(settings)
        await self.restart()

    @property
    def http(self) -> TestClient[Any, Any]:
        assert self.client is not None, "service not started"
        return self.client

    @property
    def db(self) -> Any:
        """Direct database access, to assert on what is stored."""
        if self._db_client is None:
            self._db_client = AsyncMongoClient(self.env["MONGODB_URI"], tz_aware=True)
        return self._db_client.get_default_database()

    def headers(self, user: str = "alice", tenant: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(user, tenant)}"}

    async def ws(
        self, user: str = "alice", tenant: str | None = None, *, pushes: bool = False
    ) -> WS:
        """A WebSocket authenticated by header, past its `ready` frame; see `WS` for `pushes`."""
        raw = await self.http.ws_connect("/ws", headers=self.headers(user, tenant))
        ws = WS(raw, pushes=pushes)
        ws.ready = await ws.recv()
        assert ws.ready["type"] == "ready", ws.ready
        return ws

    async def close(self) -> None:
        await self.stop()
        if self._db_client is not None:
            await self._db_client.close()


class WS:
    """A client's view of the socket: JSON frames in and out, with time limits.

    The change feed's pushes (`PUSHES`), which come whenever the user's
    conversations change, are set aside in `pushed` as a client that does not
    use them skips them, unless the socket was opened with `pushes=True`: then
    they are received like any other frame."""

    def __init__(self, raw: aiohttp.ClientWebSocketResponse, *, pushes: bool = False) -> None:
        self.raw = raw
        self.ready: dict[str, Any] = {}
        self.pushes = pushes
        self.pushed: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.raw.send_json(frame)

    async def recv(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = await self.raw.receive(timeout=max(0.01, deadline - time.monotonic()))
            assert message.type == aiohttp.WSMsgType.TEXT, message
            frame: dict[str, Any] = message.json()
            if self.pushes or frame.get("type") not in PUSHES:
                return frame
            self.pushed.append(frame)

    async def until(self, *types: str, timeout: float = RECV_TIMEOUT) -> list[dict[str, Any]]:
        """Frames up to and including the first of one of `types`."""
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()))
            frames.append(frame)
            if frame["type"] in types:
                return frames

    async def turn(self, content: str, **fields: Any) -> list[dict[str, Any]]:
        """Start a turn and return its frames up to the terminal one."""
        turn_id = fields.pop("turn_id", new_turn_id())
        await self.send({"type": "turn.start", "turn_id": turn_id, "content": content, **fields})
        return await self.until("turn.done", "turn.cancelled", "turn.error", "error")

    async def turn_started(self, content: str, **fields: Any) -> dict[str, Any]:
        """Start a turn and return its `turn.started` frame."""
        turn_id = fields.pop("turn_id", new_turn_id())
        await self.send({"type": "turn.start", "turn_id": turn_id, "content": content, **fields})
        started = (await self.until("turn.started", "error"))[-1]
        assert started["type"] == "turn.started", started
        return started

    async def close(self) -> None:
        await self.raw.close()


def make_token(
    user: str = "alice", tenant: str | None = None, *, ttl: int = 3600, **claims: Any
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"sub": user, "iat": now, "exp": now + ttl, **claims}
    if tenant is not None:
        payload["tenant_id"] = tenant
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


def new_turn_id() -> str:
    return str(uuid.uuid4())


def frame_types(frames: list[dict[str, Any]]) -> list[str]:
    """The frames' types, a run of deltas as one (a reader may get them merged)."""
    found: list[str] = []
    for frame in frames:
        if not (found and found[-1] == frame["type"] == "turn.delta"):
            found.append(frame["type"])
    return found


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "turn.delta")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session, for services in their own process."""
    async with aiohttp.ClientSession(**CHECKED) as client:
        yield client


@pytest.fixture
async def service(env: dict[str, str], fake: FakeAnthropic) -> AsyncIterator[Service]:
    running = Service(env, fake)
    await running.start()
    yield running
    await running.close()


async def eventually(check: Any, timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Poll an async `check` until it returns something truthy (for background effects)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(interval)
