"""The embedded database's patches (server/storage/embedded_fixes.py): correct, in place.

The patches reach into mongoeco's private engine, so the first test names every
internal they rely on: a new mongoeco fails here, not in a slow production.
The others query through the patched engine, in this process, what the
patches could get wrong: a field's "features" learnt after a write (an array
or a decimal arriving by insert or by update; bytes are not queried right by
mongoeco 4.11 even unpatched, so they are not tested here) and a duplicate `_id`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import mongoeco
import pytest
from bson import Decimal128
from mongoeco import AsyncMongoClient
from mongoeco.engines import sqlite as engine_module
from mongoeco.engines._sqlite_runtime import SQLiteCacheState
from pymongo.errors import DuplicateKeyError

from server.storage import embedded_fixes


def test_the_mongoeco_internals_the_patches_rely_on_are_unchanged() -> None:
    assert mongoeco.__version__ == embedded_fixes.MONGOECO_VERSION, (
        "mongoeco changed: re-read the methods named in server/storage/embedded_fixes.py "
        "(FEATURE_QUERIES, PATCHED_METHODS), then move MONGOECO_VERSION"
    )
    engine = engine_module.SQLiteEngine
    for name in (*embedded_fixes.FEATURE_QUERIES.values(), *embedded_fixes.PATCHED_METHODS):
        assert callable(getattr(engine, name, None)), name
    assert callable(getattr(engine, "_storage_key", None))
    assert "collection_features_cache" in SQLiteCacheState.__dataclass_fields__
    assert embedded_fixes.apply() is True
    assert engine._chat_fixes_applied is True  # type: ignore[attr-defined]


@pytest.fixture
async def collection(tmp_path: Path) -> AsyncIterator[Any]:
    embedded_fixes.apply()
    engine = engine_module.SQLiteEngine(str(tmp_path / "fixes.sqlite3"))
    await engine.connect()
    client: Any = AsyncMongoClient(engine)
    try:
        yield client["fixes"]["documents"]
    finally:
        await client.close()


async def _ids(collection: Any, query: dict[str, Any]) -> list[str]:
    return sorted([doc["_id"] async for doc in collection.find(query)])


async def test_a_field_becomes_an_array_or_a_decimal_after_queries_learnt_it_was_not(
    collection: Any,
) -> None:
    await collection.insert_many([{"_id": f"s{n}", "tags": "plain", "price": n} for n in range(3)])
    # Each query fills a feature of its field ("never an array", "never a decimal"...).
    assert await _ids(collection, {"tags": "red"}) == []
    assert await _ids(collection, {"price": {"$gt": 5}}) == []
    assert await _ids(collection, {"tags": {"$type": "array"}}) == []

    await collection.insert_one({"_id": "inserted", "tags": ["red", "blue"], "price": 1})
    await collection.update_one({"_id": "s1"}, {"$set": {"price": Decimal128(Decimal("9.5"))}})
    await collection.update_one({"_id": "s0"}, {"$set": {"tags": ["red"]}})

    assert await _ids(collection, {"tags": "red"}) == ["inserted", "s0"]
    assert await _ids(collection, {"tags": {"$type": "array"}}) == ["inserted", "s0"]
    assert await _ids(collection, {"price": {"$gt": 5}}) == ["s1"]
    # A delete leaves the features as they were: the answers stay right.
    await collection.delete_one({"_id": "inserted"})
    assert await _ids(collection, {"tags": "red"}) == ["s0"]


async def test_a_field_of_one_type_stops_sorting_as_one_type_when_another_arrives(
    collection: Any,
) -> None:
    await collection.insert_many([{"_id": f"n{n}", "rank": n} for n in (3, 1, 2)])
    ranks = [doc["rank"] async for doc in collection.find({}).sort("rank", 1)]
    assert ranks == [1, 2, 3]
    await collection.insert_one({"_id": "text", "rank": "a"})  # strings sort after numbers
    await collection.insert_one({"_id": "none", "rank": None})  # null sorts first
    ranks = [doc["rank"] async for doc in collection.find({}).sort("rank", 1)]
    assert ranks == [None, 1, 2, 3, "a"]


async def test_a_duplicate_id_is_refused_whatever_its_shape(collection: Any) -> None:
    await collection.insert_one({"_id": "plain"})
    await collection.insert_one({"_id": {"tenant": "t", "user": "u"}})
    await collection.insert_one({"_id": 1})
    for duplicate in ("plain", {"tenant": "t", "user": "u"}, 1, 1.0):
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"_id": duplicate})
    assert await collection.count_documents({}) == 3


async def test_an_id_with_other_conditions_matches_as_before(collection: Any) -> None:
    await collection.insert_many(
        [
            {"_id": "a", "user_id": "u1", "status": "running"},
            {"_id": "b", "user_id": "u2", "status": "running"},
            {"_id": {"k": "c"}, "user_id": "u1", "status": "done"},
            {"_id": 7, "user_id": "u1", "status": "done"},
        ]
    )
    assert await collection.find_one({"_id": "a", "user_id": "u1"}) is not None
    assert await collection.find_one({"_id": "a", "user_id": "u2"}) is None
    assert await collection.find_one({"_id": {"k": "c"}, "status": "done"}) is not None
    assert await _ids(collection, {"_id": {"$in": ["a", "b", "z"]}, "user_id": "u2"}) == ["b"]
    assert await collection.count_documents({"_id": {"$in": ["a", 7.0]}}) == 2
    assert await collection.count_documents({"$or": [{"_id": "a"}, {"_id": "b"}]}) == 2
    assert await collection.count_documents({"_id": {"$ne": "a"}, "user_id": "u1"}) == 2
    updated = await collection.find_one_and_update(
        {"_id": "b", "status": "running"}, {"$set": {"status": "done"}}
    )
    assert updated is not None and updated["_id"] == "b"
    again = {"$set": {"status": "done"}}
    assert await collection.find_one_and_update({"_id": "b", "status": "running"}, again) is None
