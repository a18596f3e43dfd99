"""The MongoDB client's life: connect (embedded or real), create indexes, close.

One PyMongo async client for the process; the embedded server, when used, is
started before it and stopped after it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.uri_parser import parse_uri

from server.config import Settings
from server.storage.embedded import EmbeddedMongo

log = logging.getLogger(__name__)

Document = dict[str, Any]

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


def database_name(uri: str) -> str:
    """The database named in the URI's path, else `chat`."""
    return parse_uri(uri).get("database") or "chat"


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[AsyncDatabase[Document]]:
    embedded: EmbeddedMongo | None = None
    uri = settings.mongodb_uri
    if uri is None:
        embedded = EmbeddedMongo(settings.data_dir / "chat.sqlite3")
        uri = embedded.start()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        uri, tz_aware=True, serverSelectionTimeoutMS=10_000, appname="chat-service"
    )
    try:
        db = client[database_name(uri)]
        await ensure_indexes(db)
        yield db
    finally:
        await client.close()
        if embedded is not None:
            embedded.stop()


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    for collection, indexes in INDEXES.items():
        await db[collection].create_indexes(indexes)
