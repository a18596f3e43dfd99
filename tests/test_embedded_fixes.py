"""The embedded database's patches (server/storage/embedded_fixes/): correct, in place.

The patches reach into mongoeco's private engine, so the first test names every
internal they rely on: a new mongoeco fails here, not in a slow production.
The others query through the patched engine, in this process, what the
patches could get wrong: a field's "features" learnt after a write (an array
or a decimal arriving by insert or by update; bytes are not queried right by
mongoeco 4.11 even unpatched, so they are not tested here) and a duplicate `_id`.
"""

from __future__ import annotations

import asyncio
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
        "mongoeco changed: re-read the methods named in server/storage/embedded_fixes/ "
        "(FEATURE_QUERIES, PATCHED_METHODS), then move MONGOECO_VERSION"
    )
    engine = engine_module.SQLiteEngine
    for name in (*embedded_fixes.FEATURE_QUERIES.values(), *embedded_fixes.PATCHED_METHODS):
        assert callable(getattr(engine, name, None)), name
    assert callable(getattr(engine, "_storage_key", None))
    for name in (  # fix 7 reads mongoeco's own index tables through these
        "_load_indexes",
        "_lookup_collection_id",
        "_require_connection",
        "_multikey_type_score",
        "_quote_identifier",
    ):
        assert callable(getattr(engine, name, None)), name
    from mongoeco.core import bson_scalars, codec

    assert callable(codec.DocumentCodec.encode) and callable(bson_scalars.validate_bson_value)
    from mongoeco._change_streams.hub import ChangeStreamHub
    from mongoeco.engines.adapter import EngineSpiAdapter

    assert callable(getattr(EngineSpiAdapter, embedded_fixes.changes.PATCHED, None))
    assert callable(getattr(ChangeStreamHub, "should_publish_events", None))
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


async def _plan_of(collection: Any, query: dict[str, Any]) -> str:
    """SQLite's plan for the statement mongoeco sends for `find_one(query)`."""
    engine = collection.database.client._engine
    statements: list[str] = []
    engine._connection.set_trace_callback(statements.append)
    try:
        await collection.find_one(query)
    finally:
        engine._connection.set_trace_callback(None)
    select = next(sql for sql in reversed(statements) if "FROM documents" in sql)
    rows = engine._connection.execute(f"EXPLAIN QUERY PLAN {select}").fetchall()
    return " ".join(str(row[-1]) for row in rows)


async def test_an_indexed_field_narrows_through_its_index_and_matches_as_before(
    collection: Any,
) -> None:
    await collection.create_index([("owner", 1), ("seq", 1)], name="owner_seq")
    await collection.insert_many(
        [{"_id": f"m{n}", "owner": f"u{n % 2}", "seq": n} for n in range(8)]
        + [
            {"_id": "number-owner", "owner": 1, "seq": 5},
            {"_id": "no-seq", "owner": "u1"},
        ]
    )
    query = {"owner": "u1", "seq": {"$gt": 2}}
    assert [doc["_id"] async for doc in collection.find(query).sort("seq", -1)] == [
        "m7",
        "m5",
        "m3",
    ]
    assert await _ids(collection, {"owner": "u1", "seq": {"$lte": 1}}) == ["m1"]
    assert await _ids(collection, {"owner": 1}) == ["number-owner"]
    # The index on (owner, seq) searched by its expressions, not only by the collection.
    assert "<expr>=?" in await _plan_of(collection, {"owner": "u1", "seq": 3})

    # Once a document holds the field as an array, an equality also matches inside it:
    # the index (one value per document) cannot say so, and the filter stops using it.
    await collection.insert_one({"_id": "shared", "owner": ["u1", "u2"], "seq": 4})
    assert await _ids(collection, {"owner": "u1", "seq": {"$gt": 2}}) == [
        "m3",
        "m5",
        "m7",
        "shared",
    ]


async def test_a_literal_regex_beside_other_conditions_matches_as_before(
    collection: Any,
) -> None:
    await collection.create_index([("owner", 1)], name="owner")
    await collection.insert_many(
        [
            {"_id": "a", "owner": "u1", "content": "Soup of the day"},
            {"_id": "b", "owner": "u1", "content": "bread and SOUP"},
            {"_id": "c", "owner": "u2", "content": "soup"},
            {"_id": "d", "owner": "u1", "content": "a.b costs 3$"},
            {"_id": "e", "owner": "u1", "content": 42},
        ]
    )

    async def found(pattern: str, options: str = "i") -> list[str]:
        regex = {"$regex": pattern, "$options": options}
        return await _ids(collection, {"owner": "u1", "content": regex})

    assert await found("soup") == ["a", "b"]
    assert await found("soup", "") == []
    assert await found("SOUP", "") == ["b"]
    assert await found("^soup") == ["a"]
    assert await found("soup$") == ["b"]
    assert await found(r"a\.b costs 3\$") == ["d"]
    assert await found("s.up") == ["a", "b"]  # not a literal: mongoeco's own path, still right
    # Non-ASCII text in the field: `lower` would miss it, so mongoeco's path answers.
    await collection.insert_one({"_id": "f", "owner": "u1", "content": "ÉTÉ soup"})
    assert await found("soup") == ["a", "b", "f"]
    await collection.insert_one({"_id": "g", "owner": "u1", "content": ["hot soup", "x"]})
    assert await found("soup") == ["a", "b", "f", "g"]


async def test_a_change_stream_still_sees_the_writes_made_while_it_watches(
    collection: Any,
) -> None:
    """Dispatch is skipped only while nobody watches (fix 6)."""
    await collection.insert_one({"_id": "before"})
    stream = collection.watch()
    try:
        await collection.insert_one({"_id": "while"})
        await collection.update_one({"_id": "before"}, {"$set": {"n": 1}})
        async with asyncio.timeout(10):  # not dispatched: never
            seen = [await stream.next(), await stream.next()]
    finally:
        stream.close()
    assert [(c["operationType"], c["documentKey"]["_id"]) for c in seen] == [
        ("insert", "while"),
        ("update", "before"),
    ]
    await collection.insert_one({"_id": "after"})
    assert await collection.count_documents({}) == 3


async def test_an_anchored_regex_on_an_indexed_array_is_read_off_the_index(
    collection: Any,
) -> None:
    await collection.create_index([("terms", 1)], name="terms")
    await collection.create_index([("owner", 1)], name="owner")
    await collection.insert_many(
        [
            {"_id": "a", "owner": "u1", "terms": ["k:soup", "k:bread"]},
            {"_id": "b", "owner": "u1", "terms": ["k:soupy"]},
            {"_id": "c", "owner": "u2", "terms": ["k:soup"]},
            {"_id": "d", "owner": "u1", "terms": "k:soup of the day"},  # a string, not an array
            {"_id": "e", "owner": "u1", "terms": ["x:soup", 5, "K:SOUP"]},
            {"_id": "f", "owner": "u1", "terms": ["k:sour"]},
            {"_id": "g", "owner": "u1"},
        ]
    )

    async def found(pattern: str) -> list[str]:
        return await _ids(collection, {"owner": "u1", "terms": {"$regex": pattern}})

    assert await found("^k:soup") == ["a", "b", "d"]
    assert await found("^k:sou") == ["a", "b", "d", "f"]
    assert await found("^k:bread") == ["a"]
    assert await found("^k:soup$") == ["a"]  # not a prefix: mongoeco's own path, still right
    assert await found(r"^k:\w") == ["a", "b", "d", "f"]  # a class, not the letter w
    assert await _ids(collection, {"terms": {"$regex": "^k:soup"}}) == ["a", "b", "c", "d"]
    assert await _ids(
        collection, {"owner": "u1", "$and": [{"terms": {"$regex": p}} for p in ("^k:s", "^k:b")]}
    ) == ["a"]
    # Read off the index: the terms' range, then each document by its key.
    plan = await _plan_of(collection, {"owner": "u1", "terms": {"$regex": "^k:so"}})
    assert "SEARCH multikey_entries USING COVERING INDEX" in plan, plan
    assert "SEARCH documents USING INDEX sqlite_autoindex_documents" in plan, plan

    # Entries follow their document through updates and deletes.
    await collection.update_one({"_id": "a"}, {"$set": {"terms": ["k:stew"]}})
    await collection.update_one({"_id": "g"}, {"$set": {"terms": ["k:soupe"]}})
    await collection.delete_one({"_id": "b"})
    assert await found("^k:soup") == ["d", "g"]


async def test_a_documents_array_entries_are_found_by_the_document(collection: Any) -> None:
    await collection.create_index([("terms", 1)], name="terms")
    await collection.insert_one({"_id": "a", "terms": ["x", "y"]})
    connection = collection.database.client._engine._connection
    plan = connection.execute(
        "EXPLAIN QUERY PLAN DELETE FROM multikey_entries "
        "WHERE collection_id = ? AND storage_key = ?",
        (1, "a"),
    ).fetchall()
    assert "chat_fix_multikey_entries_storage" in " ".join(str(row[-1]) for row in plan)


async def test_plain_values_are_stored_and_refused_as_before(collection: Any) -> None:
    from bson import Code

    document = {
        "_id": "a",
        "text": "plain",
        "code": Code("return 1"),
        "flags": [True, False, None],
        "nested": {"words": ["one", "two"], "n": 2**40, "f": 1.5},
    }
    await collection.insert_one(document)
    stored = await collection.find_one({"_id": "a"})
    assert stored == document
    assert type(stored["code"]) is Code
    with pytest.raises(TypeError):
        await collection.insert_one({"_id": "b", "tags": {"a", "b"}})
    with pytest.raises((OverflowError, ValueError)):
        await collection.insert_one({"_id": "c", "values": ["x", 2**70]})
    assert await collection.count_documents({}) == 1


def test_one_field_indexes_are_only_those_that_must_be() -> None:
    """Each one-field index is one more SQLite index over every indexed array element
    (storage/indexes.py, SINGLE_FIELD_COST): only the search terms and the TTL have one."""
    from server.files.store import INDEXES as FILE_INDEXES
    from server.storage.indexes import wanted

    declared = [
        (collection, model.document)
        for collection, models in [
            *wanted(embedded=True, tombstone_seconds=60).items(),
            *FILE_INDEXES.items(),
        ]
        for model in models
    ]
    one_field = {
        (collection, spec["name"])
        for collection, spec in declared
        if len(spec["key"]) == 1 and not spec.get("unique") and "." not in next(iter(spec["key"]))
    }  # a dotted path (files' `metadata.conversations`) has no multikey entries in mongoeco
    assert one_field == {("messages", "search_terms"), ("tombstones", "expiry")}
