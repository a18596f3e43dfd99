"""Fix 1: mongoeco's per-collection features cache survives writes.

**The features cache survives writes.** Per collection, mongoeco caches
"features" of a field (is it ever an array, a decimal, bytes, a DBRef, a
non-ASCII string; does every document hold it as one scalar type); it
fills each by a scan of the whole collection and empties them all on every
write to it, so each query after a write scans the collection once per
feature. Here a write keeps them: a temporary trigger on the writing
connection hands every inserted or updated document to Python, and before
a feature of that collection is read, the pending documents are folded in
by running mongoeco's own feature query over a table holding only them.
An "exists" feature can only turn true (a delete, or an update that drops
the array, leaves it conservatively true: the general plan, still
correct); "every document is a number/string/bool" can only turn false.
Deletes need nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

# The private feature queries this fix reuses; the guard test checks each exists.
FEATURE_QUERIES: dict[str, str] = {
    "traverses_array": "_field_traverses_array_in_collection",
    "traverses_dbref": "_field_traverses_dbref_in_collection",
    "top_level_array": "_field_is_top_level_array_in_collection",
    "contains_real_numeric": "_field_contains_real_numeric_in_collection",
    "contains_non_ascii_text": "_field_contains_non_ascii_text_in_collection",
    "tagged_type": "_field_contains_tagged_value_type_in_collection",
    "comparison_mismatch": "_field_has_comparison_type_mismatch_in_collection",
    "scalar_or_array_comparison_mismatch": (
        "_field_has_scalar_or_array_element_type_mismatch_in_collection"
    ),
    "uniform_scalar_sort_type": "_field_has_uniform_scalar_sort_type_in_collection",
}
TYPED_FEATURES = {"tagged_type", "comparison_mismatch", "scalar_or_array_comparison_mismatch"}
UNIFORM_FEATURE = "uniform_scalar_sort_type"
WRITTEN_FUNCTION = "chat_fix_document_written"
TRIGGERS = (
    "CREATE TEMP TRIGGER IF NOT EXISTS chat_fix_inserted AFTER INSERT ON documents "
    f"BEGIN SELECT {WRITTEN_FUNCTION}(NEW.db_name, NEW.coll_name, NEW.document); END",
    "CREATE TEMP TRIGGER IF NOT EXISTS chat_fix_updated "
    "AFTER UPDATE OF db_name, coll_name, document ON documents "
    f"BEGIN SELECT {WRITTEN_FUNCTION}(NEW.db_name, NEW.coll_name, NEW.document); END",
)

Collection = tuple[str, str]


class FeatureCache(dict[tuple[str, str, str], bool | str]):
    """mongoeco's features cache, brought up to date with the writes before each lookup."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._pending: dict[Collection, list[str]] = {}

    def written(self, db_name: str, coll_name: str, document: str) -> None:
        """Called by the trigger, inside the write's statement."""
        with self._lock:
            self._pending.setdefault((db_name, coll_name), []).append(document)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, tuple) and len(key) == 3:
            self._fold((key[0], key[1]))
        return super().__contains__(key)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            super().clear()

    def _fold(self, collection: Collection) -> None:
        with self._lock:
            documents = self._pending.pop(collection, None)
            if not documents:
                return
            cached = [(key, value) for key, value in self.items() if key[:2] == collection]
            if not cached:
                return
            with _only(collection, documents) as scope:
                for key, value in cached:
                    updated = _fold_feature(scope, key, value)
                    if updated is None:
                        super().pop(key, None)  # a feature this fix does not know
                    else:
                        self[key] = updated


class _Scope:
    """Stands in for the engine in its feature queries: they read only the new documents."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._collection_features_cache: dict[tuple[str, str, str], bool | str] = {}
        self._connection = connection

    def _require_connection(self) -> sqlite3.Connection:
        return self._connection


class _only:
    """A throw-away in-memory `documents` table holding `documents` of `collection`."""

    def __init__(self, collection: Collection, documents: list[str]) -> None:
        self._rows = [(*collection, str(index), doc) for index, doc in enumerate(documents)]

    def __enter__(self) -> _Scope:
        self._connection = sqlite3.connect(":memory:", check_same_thread=False)
        self._connection.execute(
            "CREATE TABLE documents (db_name TEXT, coll_name TEXT, storage_key TEXT, document TEXT)"
        )
        self._connection.executemany("INSERT INTO documents VALUES (?, ?, ?, ?)", self._rows)
        return _Scope(self._connection)

    def __exit__(self, *exc_info: object) -> None:
        self._connection.close()


def _fold_feature(scope: _Scope, key: tuple[str, str, str], value: bool | str) -> bool | str | None:
    """The feature's value once the new documents are stored; None if unknown."""
    from mongoeco.engines.sqlite import SQLiteEngine

    kind, _, argument = key[2].partition(":")
    method = FEATURE_QUERIES.get(kind)
    if method is None:
        return None
    if kind == UNIFORM_FEATURE:
        if not isinstance(value, str):
            return False  # not uniform stays not uniform
        query: Callable[..., Any] = getattr(SQLiteEngine, method)
        return value if query(scope, key[0], key[1], argument) == value else False
    if value is True:
        return True
    arguments = argument.rsplit(":", 1) if kind in TYPED_FEATURES else [argument]
    return bool(getattr(SQLiteEngine, method)(scope, key[0], key[1], *arguments))
