"""`python -m bench.embedded_probe`: what one operation costs mongoeco as a collection grows.

Why the growth workload's figures grow, isolated from the service: mongoeco
(the embedded database) keeps, per collection, a cache of "features" (does
any document hold this field as an array, a decimal, bytes...), fills it by
scanning every document of the collection (`json_extract` over the table)
the first time a query needs it, and empties it on every write to that
collection. So a query that follows a write pays a few full scans per field
in its filter, and a plain `insert_one` also decodes every stored document to
check `_id` uniqueness. Both are measured here at each size: an operation
right after a write to the same collection (what a busy service always sees),
and the same operation with the cache warm. The last three are the
service's read shapes (a page of one conversation, a user's list, a user's
search, as a substring regex before issue 20's last part and by terms
since), against indexes shaped like the service's: flat only if the filter
is served by an index (`embedded_fixes` 4, 5 and 7). The last row writes a
message of 300 search terms: flat only with fix 9.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from mongoeco import AsyncMongoClient
from mongoeco.engines.sqlite import SQLiteEngine
from pymongo import UpdateOne

from server.identity import Identity
from server.storage import embedded_fixes
from server.storage.terms import FIELD, matching, terms

SIZES = (1_000, 5_000, 20_000)
REPEATS = 20
Operation = Callable[[Any, list[str]], Awaitable[object]]

OPERATIONS: dict[str, Operation] = {
    "find_one {_id}": lambda c, ids: c.find_one({"_id": ids[0]}),
    "find_one {_id, owner}": lambda c, ids: c.find_one({"_id": ids[0], "user_id": "u1"}),
    "find {_id: {$in: 5}}": lambda c, ids: c.find({"_id": {"$in": ids[:5]}}).to_list(),
    "find_one_and_update {_id, status}": lambda c, ids: c.find_one_and_update(
        {"_id": ids[1], "status": "running"}, {"$set": {"n": 1}}
    ),
    "upsert by _id (insert_new)": lambda c, ids: c.bulk_write(
        [UpdateOne({"_id": uuid.uuid4().hex}, {"$setOnInsert": {"n": 1}}, upsert=True)]
    ),
    "insert_one": lambda c, ids: c.insert_one({"_id": uuid.uuid4().hex, "n": 1}),
    # The service's read shapes: a page of one conversation, a list, a search.
    "page {conv, seq $gt} sort seq": lambda c, ids: (
        c.find({"conversation_id": "c1", "seq": {"$gt": 2}}).sort("seq", 1).limit(50).to_list()
    ),
    "list {owner} sort, limit 50": lambda c, ids: (
        c.find({"user_id": "u1", "status": "running"})
        .sort([("seq", -1), ("_id", -1)])
        .limit(50)
        .to_list()
    ),
    "search {owner, regex i} limit 20": lambda c, ids: (
        c.find({"user_id": "u1", "text": {"$regex": "piano soup", "$options": "i"}})
        .sort("seq", -1)
        .limit(20)
        .to_list()
    ),
    # Search as the service sends it now (storage/terms.py): a common word, a rare one.
    "terms ^word (in every doc) limit 20": lambda c, ids: _search(c, "pian"),
    "terms ^word (in 1 doc of 97) limit 20": lambda c, ids: _search(c, "lant"),
    "upsert a message of 300 terms": lambda c, ids: c.bulk_write(
        [UpdateOne({"_id": uuid.uuid4().hex}, {"$setOnInsert": _wordy("u2")}, upsert=True)]
    ),
}
# What the service's indexes look like for those shapes (server/storage/indexes.py).
INDEXES = (
    [("conversation_id", 1), ("seq", 1)],
    [("user_id", 1), ("status", 1), ("seq", -1)],
    [(FIELD, 1)],
)
WORDS = ("soup", "bread", "garden", "piano", "winter", "river")


async def probe(sizes: tuple[int, ...] = SIZES, repeats: int = REPEATS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="embedded-probe-") as tmp:
        engine = SQLiteEngine(f"{tmp}/probe.sqlite3")
        await engine.connect()
        client: Any = AsyncMongoClient(engine)
        collection = client["probe"]["documents"]
        for keys in INDEXES:
            await collection.create_index(keys)
        stored, ids, figures = 0, [uuid.uuid4().hex for _ in range(5)], {}
        for size in sizes:
            batch = [_document(index, ids) for index in range(stored, size)]
            for start in range(0, len(batch), 1_000):
                await collection.insert_many(batch[start : start + 1_000])
            stored = size
            figures[size] = {
                name: {
                    "after_a_write_ms": await _timed(collection, ids, operation, repeats, True),
                    "cache_warm_ms": await _timed(collection, ids, operation, repeats, False),
                }
                for name, operation in OPERATIONS.items()
            }
        await client.close()
    return figures


def _document(index: int, ids: list[str]) -> dict[str, Any]:
    key = ids[index] if index < len(ids) else uuid.uuid4().hex
    words = " ".join(WORDS[(index * 7 + n) % len(WORDS)] for n in range(50))
    if index % 97 == 0:
        words += " lantern"
    user = f"u{index % 50}"
    return {
        "_id": key,
        "user_id": user,
        "conversation_id": f"c{index % 350}",
        "seq": index,
        "status": "running",
        "text": words,
        FIELD: terms("t", user, words),
    }


def _search(collection: Any, word: str) -> Awaitable[object]:
    query = {"user_id": "u1", "$and": matching(Identity("t", "u1"), word)}
    return collection.find(query).sort("seq", -1).limit(20).to_list()


def _wordy(user: str) -> dict[str, Any]:
    words = " ".join(f"w{uuid.uuid4().hex[:6]}" for _ in range(300))
    return {"user_id": user, "status": "done", "text": words, FIELD: terms("t", user, words)}


async def _timed(
    collection: Any, ids: list[str], operation: Operation, repeats: int, write_first: bool
) -> float:
    """The median of `repeats` runs; `write_first`: an update to another document before each."""
    durations = []
    for _ in range(repeats):
        if write_first:
            await collection.update_one({"_id": ids[4]}, {"$set": {"touched": time.time()}})
        else:
            await operation(collection, ids)  # the first run fills the cache
        began = time.perf_counter()
        await operation(collection, ids)
        durations.append(time.perf_counter() - began)
    return round(sorted(durations)[len(durations) // 2] * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.embedded_probe", description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument(
        "--unpatched", action="store_true", help="without server/storage/embedded_fixes/"
    )
    args = parser.parse_args()
    if not args.unpatched:
        embedded_fixes.apply()
    figures = asyncio.run(probe(tuple(int(s) for s in args.sizes.split(","))))
    sizes = list(figures)
    print("ms per operation (median): after a write to the collection / cache warm")
    print("operation".ljust(36) + "".join(f"{size:>18,}" for size in sizes))
    for name in OPERATIONS:
        cells = [
            f"{figures[s][name]['after_a_write_ms']} / {figures[s][name]['cache_warm_ms']}"
            for s in sizes
        ]
        print(name.ljust(36) + "".join(cell.rjust(18) for cell in cells))


if __name__ == "__main__":
    main()
