"""Nine fixes to mongoeco 4.11.0 that make its cost per operation flat in the stored data.

Applied only in the embedded database's child process (`embedded.serve`), only
to the version they were written for: they replace private methods, so another
version is left unpatched (slower, still correct) and `tests/test_embedded_fixes.py`
fails, naming the internals to re-read. Why, measured: docs/decisions.md,
issue 20; bench/README.md, "A store that fills".

1. The features cache survives writes (`features.py`).
2. An `_id` in a filter is found by its key (`ids.py`).
3. `insert_one` checks a plain `_id` by its key (`ids.py`).
4. Any other indexed field in a filter narrows through its index (`narrowing.py`).
5. A literal regex among other conditions stays in SQL (`narrowing.py`).
6. A write is not followed by a change-stream dispatch when nobody watches
   (`changes.py`).
7. An anchored regex on an indexed array is an index range (`narrowing.py`).
8. A plain string is encoded and validated in one step (`plain_values.py`).
9. A document's array index entries are found by the document: every write
   of a document deletes its entries in `multikey_entries` by (collection,
   key), which no index of mongoeco's serves (its `scalar_index_entries` has
   one), so each write scanned every array element of the collection's
   indexed arrays. The index is created at start-up (`MULTIKEY_BY_DOCUMENT`);
   a file opened by an unpatched mongoeco keeps it, SQLite maintains it.
"""

from __future__ import annotations

import logging
from typing import Any

from server.storage.embedded_fixes import changes, plain_values
from server.storage.embedded_fixes.features import (
    FEATURE_QUERIES,
    TRIGGERS,
    WRITTEN_FUNCTION,
    FeatureCache,
)
from server.storage.embedded_fixes.ids import id_keys, plain_id
from server.storage.embedded_fixes.narrowing import (
    index_condition,
    led_by_prefix,
    prefix_condition,
    regex_condition,
)

__all__ = [
    "FEATURE_QUERIES",
    "MONGOECO_VERSION",
    "MULTIKEY_BY_DOCUMENT",
    "PATCHED_METHODS",
    "apply",
]

log = logging.getLogger(__name__)

MULTIKEY_BY_DOCUMENT = (
    "CREATE INDEX IF NOT EXISTS chat_fix_multikey_entries_storage "
    "ON multikey_entries (collection_id, storage_key)"
)

MONGOECO_VERSION = "4.11.0"
# The private methods replaced; the guard test checks each exists.
PATCHED_METHODS = (
    "_connect_sync",
    "_sort_requires_python",
    "_translate_query_plan_with_multikey",
    "_invalidate_collection_features_cache",
    "_validate_document_against_unique_indexes",
)


def apply() -> bool:
    """Patch mongoeco's SQLite engine if it is the version these fixes were written for."""
    import mongoeco
    from mongoeco.engines import sqlite as engine_module

    if mongoeco.__version__ != MONGOECO_VERSION:
        log.warning(
            "mongoeco %s, not %s: the embedded database runs unpatched (its cost grows with "
            "the stored data); re-check server/storage/embedded_fixes/",
            mongoeco.__version__,
            MONGOECO_VERSION,
        )
        return False
    engine_class: Any = engine_module.SQLiteEngine
    if getattr(engine_class, "_chat_fixes_applied", False):
        return True
    connect_sync = engine_class._connect_sync
    validate_ids = engine_class._validate_document_against_unique_indexes
    invalidate = engine_class._invalidate_collection_features_cache
    translate = engine_class._translate_query_plan_with_multikey
    from mongoeco.engines._sqlite_plan_heuristics import sort_requires_python
    from mongoeco.engines.sqlite_query import json_path_for_field, type_expression_sql

    def _connect_sync_with_triggers(self: Any) -> None:
        connect_sync(self)
        cache = self._cache_state.collection_features_cache
        if not isinstance(cache, FeatureCache):
            cache = self._cache_state.collection_features_cache = FeatureCache()
        connection = self._connection
        connection.create_function(WRITTEN_FUNCTION, 3, cache.written, deterministic=False)
        for trigger in TRIGGERS:
            connection.execute(trigger)
        connection.execute(MULTIKEY_BY_DOCUMENT)
        connection.commit()

    def _invalidate_features(
        self: Any, db_name: str | None = None, coll_name: str | None = None
    ) -> None:
        # One collection's invalidation follows a write: the trigger has the written
        # documents and the cache folds them in at the next lookup.
        if db_name is None or coll_name is None:
            invalidate(self, db_name, coll_name)

    def _validate_unique(
        self: Any, db_name: str, coll_name: str, document: Any, **options: Any
    ) -> None:
        if options.get("scan_payload_id") and plain_id(document.get("_id")):
            options["scan_payload_id"] = False
        validate_ids(self, db_name, coll_name, document, **options)

    def _translate_by_key(
        self: Any, db_name: str, coll_name: str, plan: Any
    ) -> tuple[str, list[object]]:
        # Fix 7: an index range leads; the other conditions are checked on its rows.
        led = led_by_prefix(self, db_name, coll_name, plan, translate)
        if led is not None:
            return led
        regex = prefix_condition(self, db_name, coll_name, plan) or regex_condition(
            self, db_name, coll_name, plan
        )
        if regex is not None:
            return regex
        sql, params = translate(self, db_name, coll_name, plan)
        keys = id_keys(self, plan)
        if keys is not None:
            marks = ", ".join("?" * len(keys))
            return f"documents.storage_key IN ({marks}) AND ({sql})", [*keys, *params]
        indexed = index_condition(self, db_name, coll_name, plan)
        if indexed is not None:
            return f"{indexed[0]} AND ({sql})", [*indexed[1], *params]
        return sql, params

    def _sort_requires_python(
        self: Any, db_name: str, coll_name: str, plan: Any, sort: Any
    ) -> bool:
        # As mongoeco's, with its filter translated as the reads are (fixes 2 and 4).
        return sort_requires_python(
            db_name=db_name,
            coll_name=coll_name,
            plan=plan,
            sort=sort,
            plan_has_array_traversing_paths=self._plan_has_array_traversing_paths,
            translate_query_plan=lambda node: self._translate_query_plan_with_multikey(
                db_name, coll_name, node
            ),
            field_traverses_array_in_collection=self._field_traverses_array_in_collection,
            field_contains_tagged_bytes_in_collection=self._field_contains_tagged_bytes_in_collection,
            field_contains_tagged_undefined_in_collection=self._field_contains_tagged_undefined_in_collection,
            fetchone=lambda sql, params: self._require_connection().execute(sql, params).fetchone(),
            type_expression_sql=type_expression_sql,
            json_path_for_field=json_path_for_field,
        )

    engine_class._connect_sync = _connect_sync_with_triggers
    engine_class._sort_requires_python = _sort_requires_python
    engine_class._translate_query_plan_with_multikey = _translate_by_key
    engine_class._invalidate_collection_features_cache = _invalidate_features
    engine_class._validate_document_against_unique_indexes = _validate_unique
    changes.apply()
    plain_values.apply()
    engine_class._chat_fixes_applied = True
    return True
