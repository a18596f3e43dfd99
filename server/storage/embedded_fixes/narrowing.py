"""Fixes 4 and 5: a filter is served by the collection's indexes.

4. **Any other indexed field in a filter narrows through its index.** mongoeco
   builds each ordered index as a SQLite index over expressions of the
   document (per field: its tagged type, its value), but translates a
   condition into other expressions (`json_type(...) = 'text' AND
   json_extract(...) = ?`), so SQLite never uses them and every
   `{conversation_id}`, `{tenant_id, user_id}` or `{seq: {$gt}}` read scans the
   whole collection. For an equality on a string, or a range on a number, of
   a top-level field that some index holds and that no document of the
   collection holds as an array, the condition is also written in the
   index's own expressions: a superset of the rows mongoeco's condition
   keeps (the value stored plainly, compared the same way), so the result is
   the same and SQLite finds it through the index. mongoeco's check whether
   a sort needs Python (a query of its own over the same filter) is given
   the same translation, so it narrows too.

5. **A literal regex among other conditions stays in SQL.** mongoeco runs a
   literal regex (`{content: {$regex: "soup", $options: "i"}}`, what search
   sends) in SQL only when it is the whole filter; beside any other
   condition (the owner) the whole filter fell back to Python, which decodes
   every document of the collection. Here it is translated the way
   mongoeco's own single-regex path does it (`instr`, `lower` for `i`, the
   same refusals: non-ASCII under `i`, a field held as an array), so the
   owner's conditions narrow it through their index (fix 4).

7. **An anchored regex on an indexed array is an index range.** A regex on a
   field some document holds as an array fell back to Python, decoding every
   document of the collection; mongoeco's own multikey translation, for an
   equality, is a correlated `EXISTS` per document, still a scan. mongoeco
   keeps a single-field index's entries in its own tables, array elements in
   `multikey_entries` and scalars in `scalar_index_entries`, each ordered by
   (collection, index, type, key). A case-sensitive literal prefix regex
   (`^word`, what search sends on `terms`, storage/terms.py) is the strings
   in `[prefix, successor of prefix)`: the documents are those whose key
   falls there in either table, read off both indexes. Exact: a string
   matches `^prefix` exactly when it sorts in that range (code point order,
   which is SQLite's byte order of UTF-8), and only strings are read.
   Beside it, the other conditions of the filter are left unindexed (fix 4
   not applied to them), so that SQLite leads with the range: left to choose,
   it led with the owner's index and tested each of the owner's messages
   against the range, a scan of one user's history again. A term is read
   within its owner's range by construction (storage/terms.py), so the range
   is never the less selective.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

Translate = Callable[[Any, str, str, Any], tuple[str, list[object]]]

RANGE_OPERATORS = {
    "GreaterThanCondition": ">",
    "GreaterThanOrEqualCondition": ">=",
    "LessThanCondition": "<",
    "LessThanOrEqualCondition": "<=",
}


def index_condition(
    engine: Any, db_name: str, coll_name: str, plan: object
) -> tuple[str, list[object]] | None:
    """`plan` in the expressions an index of the collection is built on, if it can be (fix 4)."""
    from mongoeco.core.query_plan import EqualsCondition
    from mongoeco.engines.sqlite_query import type_expression_sql, value_expression_sql

    field = getattr(plan, "field", None)
    if not isinstance(field, str) or "." in field or field == "_id":
        return None
    value = getattr(plan, "value", None)
    if isinstance(plan, EqualsCondition) and type(value) is str:
        operator = "="
    elif type(value) in (int, float) and type(plan).__name__ in RANGE_OPERATORS:
        operator = RANGE_OPERATORS[type(plan).__name__]
    else:
        return None
    indexed = any(
        field in index["fields"] and index.get("physical_name")
        for index in engine._load_indexes(db_name, coll_name)
    )
    if not indexed or engine._field_is_top_level_array_in_collection(db_name, coll_name, field):
        return None
    return (
        f"{type_expression_sql(field)} = '' AND {value_expression_sql(field)} {operator} ?",
        [value],
    )


def regex_condition(
    engine: Any, db_name: str, coll_name: str, plan: object
) -> tuple[str, list[object]] | None:
    """A literal regex as mongoeco's single-regex SQL path writes it, where it would (fix 5)."""
    from mongoeco.core.query_plan import RegexCondition
    from mongoeco.engines.sqlite_query import json_path_for_field, parse_safe_literal_regex

    if not isinstance(plan, RegexCondition) or "." in plan.field:
        return None
    literal_regex = parse_safe_literal_regex(plan.pattern, plan.options)
    if literal_regex is None:
        return None
    mode, literal, ignore_case = literal_regex
    field = plan.field
    if engine._field_is_top_level_array_in_collection(db_name, coll_name, field):
        return None
    if ignore_case and (
        not literal.isascii()
        or engine._field_contains_non_ascii_text_in_collection(db_name, coll_name, field)
    ):
        return None
    path = json_path_for_field(field)
    value = "lower(json_extract(document, ?))" if ignore_case else "json_extract(document, ?)"
    needle = literal.lower() if ignore_case else literal
    matches = {
        "exact": (f"{value} = ?", [path, needle]),
        "prefix": (f"substr({value}, 1, length(?)) = ?", [path, needle, needle]),
        "suffix": (f"substr({value}, -length(?)) = ?", [path, needle, needle]),
        "contains": (f"instr({value}, ?) > 0", [path, needle]),
    }
    match_sql, match_params = matches[mode]
    return f"json_type(document, ?) = 'text' AND {match_sql}", [path, *match_params]


def prefix_condition(
    engine: Any, db_name: str, coll_name: str, plan: object
) -> tuple[str, list[object]] | None:
    """An anchored literal regex on a singly indexed field as a range of its index (fix 7)."""
    from mongoeco.core.query_plan import RegexCondition
    from mongoeco.engines.sqlite_query import parse_safe_literal_regex

    if not isinstance(plan, RegexCondition) or "." in plan.field or plan.options:
        return None
    if re.search(r"\\[0-9A-Za-z]", plan.pattern):  # a class (\w, \d): not a literal
        return None
    literal_regex = parse_safe_literal_regex(plan.pattern, plan.options)
    if literal_regex is None or literal_regex[0] != "prefix":
        return None
    prefix = literal_regex[1]
    following = ord(prefix[-1]) + 1
    if following > sys.maxunicode or 0xD800 <= following <= 0xDFFF:
        return None
    index = next(
        (
            index
            for index in engine._load_indexes(db_name, coll_name)
            if index["fields"] == [plan.field]
            and index.get("multikey_physical_name")
            and index.get("scalar_physical_name")
            and not index.get("sparse")
            and not index.get("partial_filter_expression")
        ),
        None,
    )
    if index is None:
        return None
    collection_id = engine._lookup_collection_id(engine._require_connection(), db_name, coll_name)
    if collection_id is None:
        return None
    bounds = [
        collection_id,
        index["name"],
        engine._multikey_type_score("string"),
        prefix,
        prefix[:-1] + chr(following),
    ]
    in_range = (
        "WHERE collection_id = ? AND index_name = ? AND type_score = ? "
        "AND element_key >= ? AND element_key < ?"
    )
    quote = engine._quote_identifier
    return (
        "documents.storage_key IN ("
        f"SELECT storage_key FROM multikey_entries "
        f"INDEXED BY {quote(str(index['multikey_physical_name']))} {in_range} "
        f"UNION SELECT storage_key FROM scalar_index_entries "
        f"INDEXED BY {quote(str(index['scalar_physical_name']))} {in_range})",
        [*bounds, *bounds],
    )


def led_by_prefix(
    engine: Any, db_name: str, coll_name: str, plan: object, translate: Translate
) -> tuple[str, list[object]] | None:
    """A conjunction holding a condition fix 7 turns into a range, in SQL with that range
    and the other conditions unindexed (`translate`: mongoeco's own); None if it holds none."""
    from mongoeco.core.query_plan import AndCondition

    if not isinstance(plan, AndCondition):
        return None
    clauses = conjuncts(plan)
    ranges = [prefix_condition(engine, db_name, coll_name, clause) for clause in clauses]
    if all(found is None for found in ranges):
        return None
    parts = [
        found or translate(engine, db_name, coll_name, clause)
        for found, clause in zip(ranges, clauses, strict=True)
    ]
    return " AND ".join(f"({sql})" for sql, _ in parts), [
        param for _, params in parts for param in params
    ]


def conjuncts(plan: object) -> list[object]:
    """The conditions of a conjunction, nested ones (`$and` beside fields) brought up."""
    from mongoeco.core.query_plan import AndCondition

    if not isinstance(plan, AndCondition):
        return [plan]
    return [leaf for clause in plan.clauses for leaf in conjuncts(clause)]
