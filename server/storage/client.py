"""The MongoDB client's life: connect (embedded or real), ensure the indexes, close.

One PyMongo async client for the process, and a second one of a single
connection that only pings: whether the database is alive, asked outside the
first one's pool, which a busy database fills (`deadline.py`). The embedded
server, when used, is started before them and stopped after them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pymongo
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, PyMongoError

from server.config import Settings
from server.startup_errors import StartupError
from server.storage.embedded import EmbeddedMongo
from server.storage.indexes import ensure_indexes

log = logging.getLogger(__name__)

Document = dict[str, Any]

DEFAULT_DATABASE = "chat"
START_TIMEOUT_SECONDS = 5.0
# How long an operation waits for a server to talk to. Short on purpose: while
# the database is away, a request is answered 503 at once instead of hanging,
# and the turn engine's own retries (endings, checkpoints) carry the waiting.
SERVER_SELECTION_SECONDS = 2.0
# What an operation of the driver raises; the edges answer it `storage_unavailable`.
StorageError = PyMongoError


@asynccontextmanager
async def open_database(
    settings: Settings, listeners: Sequence[monitoring.CommandListener] = ()
) -> AsyncIterator[tuple[AsyncDatabase[Document], Callable[[], Awaitable[object]]]]:
    """The database, and a ping of it on a connection of its own."""
    embedded: EmbeddedMongo | None = None
    uri = settings.mongodb_uri
    supervisor: asyncio.Task[None] | None = None
    if uri is None:
        embedded = EmbeddedMongo(settings.data_dir / "chat.sqlite3")
        uri = embedded.start()
        # Restarted on the same port if it dies: the client below reconnects by itself.
        supervisor = asyncio.create_task(embedded.supervise(), name="embedded-mongo-supervisor")
    try:
        client = _client(uri, listeners)
        pinger = _client(uri, (), pool_size=1)
        try:
            # The database named in the URI's path, else `chat`. (Not parse_uri: for
            # mongodb+srv it resolves DNS synchronously, blocking the loop.)
            db = client.get_default_database(DEFAULT_DATABASE)
            await check_reachable(db)
            await ensure_indexes(
                db,
                embedded=embedded is not None,
                tombstone_seconds=settings.sync_tombstone_seconds,
            )
            alone = pinger.get_default_database(DEFAULT_DATABASE)
            yield db, lambda: alone.command("ping")
        finally:
            await pinger.close()
            await client.close()
    finally:
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def _client(
    uri: str, listeners: Sequence[monitoring.CommandListener], *, pool_size: int = 100
) -> AsyncMongoClient[Document]:
    try:
        return AsyncMongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=int(SERVER_SELECTION_SECONDS * 1000),
            appname="chat-service",
            event_listeners=list(listeners),
            maxPoolSize=pool_size,
        )
    except (PyMongoError, ValueError) as error:  # a malformed URI
        raise StartupError(f"MONGODB_URI: {error}") from None


async def check_reachable(db: AsyncDatabase[Document]) -> None:
    """Fail start-up within seconds, in one line, when the database does not answer."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    try:
        while True:  # each attempt is bounded by the client's short server selection
            try:
                with pymongo.timeout(max(0.1, deadline - time.monotonic())):
                    await db.command("ping")
                return
            except ConnectionFailure:
                if time.monotonic() >= deadline:
                    raise
    except ConnectionFailure as error:
        reason = str(error).split(" (configured timeouts", 1)[0].split(", Timeout:", 1)[0]
        raise StartupError(
            f"MONGODB_URI: no answer within {START_TIMEOUT_SECONDS:g} s ({reason}); "
            "check the address and that MongoDB is running"
        ) from None
    except PyMongoError as error:
        reason = str(error).rstrip(".")
        raise StartupError(f"MONGODB_URI: {reason}; check the URI and its credentials") from None
