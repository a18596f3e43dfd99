"""New documents written as upserts on their `_id`: what an insert means, at a cost that stays flat.

mongoeco, the embedded database, checks every `insert` against the `_id`s
already stored by decoding each document of the collection (a guard for
numeric ids such as 1 and 1.0), so an insert costs time in proportion to the
collection's size. An upsert on `_id` is checked by SQLite's primary key
instead. On MongoDB both are one lookup of the `_id` index, so the one code
path serves both databases.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from server.storage.client import Document


def upsert_new(document: Document) -> dict[str, Document]:
    """The update that writes `document` only if its `_id` is absent."""
    return {"$setOnInsert": {key: value for key, value in document.items() if key != "_id"}}


async def insert_new(collection: AsyncCollection[Document], documents: Sequence[Document]) -> None:
    """Insert documents with fresh `_id`s, in order, in one round trip.

    An `_id` already present is a programming error (ids are new ObjectIds),
    raised rather than silently kept.
    """
    requests = [UpdateOne({"_id": doc["_id"]}, upsert_new(doc), upsert=True) for doc in documents]
    result = await collection.bulk_write(requests, ordered=True)
    if result.upserted_count != len(documents):
        raise RuntimeError(f"{collection.name}: an _id meant to be new was already stored")
