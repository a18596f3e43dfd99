"""The MongoDB client's life: connect (embedded or real), create indexes, close.

One PyMongo async client for the process; the embedded server, when used, is
started before it and stopped after it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, PyMongoError

from server.config import Settings, StartupError
from server.storage.embedded import EmbeddedMongo

log = logging.getLogger(__name__)

Document = dict[str, Any]

DEFAULT_DATABASE = "chat"
START_TIMEOUT_SECONDS = 5.0

INDEXES: dict[str, list[IndexModel]] = {
    "conversations": [
        IndexModel(
            [
                ("tenant_id", ASCENDING),
                ("user_id", ASCENDING),
                ("archived", ASCENDING),
                ("updated_at", DESCENDING),
                ("_id", DESCENDING),
            ],
            name="owner_recent",
        ),
    ],
    "messages": [
        IndexModel(
            [("conversation_id", ASCENDING), ("seq", ASCENDING)],
            unique=True,
            name="conversation_seq",
        ),
        IndexModel([("status", ASCENDING)], name="status"),
    ],
    "turns": [
        IndexModel(
            [("tenant_id", ASCENDING), ("user_id", ASCENDING), ("turn_id", ASCENDING)],
            unique=True,
            name="owner_turn",
        ),
        IndexModel([("status", ASCENDING), ("lease_expires_at", ASCENDING)], name="status_lease"),
        IndexModel([("conversation_id", ASCENDING)], name="conversation"),
    ],
}


@asynccontextmanager
async def open_database(
    settings: Settings, listeners: Sequence[monitoring.CommandListener] = ()
) -> AsyncIterator[AsyncDatabase[Document]]:
    embedded: EmbeddedMongo | None = None
    uri = settings.mongodb_uri
    if uri is None:
        embedded = EmbeddedMongo(settings.data_dir / "chat.sqlite3")
        uri = embedded.start()
    try:
        client = _client(uri, listeners)
        try:
            # The database named in the URI's path, else `chat`. (Not parse_uri: for
            # mongodb+srv it resolves DNS synchronously, blocking the loop.)
            db = client.get_default_database(DEFAULT_DATABASE)
            await check_reachable(db)
            await ensure_indexes(db)
            yield db
        finally:
            await client.close()
    finally:
        if embedded is not None:
            embedded.stop()


def _client(
    uri: str, listeners: Sequence[monitoring.CommandListener]
) -> AsyncMongoClient[Document]:
    try:
        return AsyncMongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=10_000,
            appname="chat-service",
            event_listeners=list(listeners),
        )
    except (PyMongoError, ValueError) as error:  # a malformed URI
        raise StartupError(f"MONGODB_URI: {error}") from None


async def check_reachable(db: AsyncDatabase[Document]) -> None:
    """Fail start-up within seconds, in one line, when the database does not answer."""
    try:
        # Shorter than the client's own server-selection time-out: at start-up an
        # operator is waiting, and a wrong address will not start answering.
        with pymongo.timeout(START_TIMEOUT_SECONDS):
            await db.command("ping")
    except ConnectionFailure as error:
        reason = str(error).split(" (configured timeouts", 1)[0].split(", Timeout:", 1)[0]
        raise StartupError(
            f"MONGODB_URI: no answer within {START_TIMEOUT_SECONDS:g} s ({reason}); "
            "check the address and that MongoDB is running"
        ) from None
    except PyMongoError as error:
        reason = str(error).rstrip(".")
        raise StartupError(f"MONGODB_URI: {reason}; check the URI and its credentials") from None


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)
