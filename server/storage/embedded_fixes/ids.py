"""Fixes 2 and 3: an `_id` is found, and checked for duplicates, by its key.

2. **An `_id` in a filter is found by its key.** Only a filter of `_id` alone
   used the primary key; `{_id, user_id}`, `{_id, status}` or `{_id: {$in}}`
   became `json_extract(document, '$._id') = ...` over every row. Where the
   `_id` value is plain (see 3), the translated condition also requires
   `documents.storage_key IN (its keys)`: the same rows, found by the key.

3. **`insert_one` checks `_id` by its key.** Each insert also decoded every
   stored document to compare `_id`s, a guard for ids whose equal values
   store under different keys (1 and 1.0, bytes and Binary, naive and aware
   datetimes). An `_id` made of strings (a string, or a document of strings)
   has one stored key per value, and the primary-key lookup mongoeco does
   first already refuses a duplicate; those skip the scan.
"""

from __future__ import annotations

from typing import Any


def plain_id(value: object) -> bool:
    """An `_id` with one stored key per value: a string, or a document of strings."""
    if isinstance(value, str):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain_id(v) for k, v in value.items())
    return False


def id_keys(engine: Any, plan: object) -> list[str] | None:
    """The stored keys an `_id` equality or `$in` of plain ids can match, else None."""
    from mongoeco.core.query_plan import EqualsCondition, InCondition

    if isinstance(plan, EqualsCondition) and plan.field == "_id" and plain_id(plan.value):
        return [engine._storage_key(plan.value)]
    if (
        isinstance(plan, InCondition)
        and plan.field == "_id"
        and plan.values
        and all(plain_id(value) for value in plan.values)
    ):
        return [engine._storage_key(value) for value in plan.values]
    return None
