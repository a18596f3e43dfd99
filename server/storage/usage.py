"""What users spent: the usage of their stored answers, for the daily budgets and `/api/usage`.

Read from the answers themselves, not from a counter of this process, so the
budget holds across processes and restarts. An answer counts once it has
ended (its usage is stored then): a user's running turns can overshoot the
budget by at most their own length.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from server.prices import USAGE_FIELDS, Spent
from server.storage.client import Document

TOTALS = (*USAGE_FIELDS, "cost_usd")


def whole_usage(raw: Document | None) -> dict[str, Any] | None:
    """Every usage field as a number: answers stored before a field existed read 0 for it."""
    if raw is None:
        return None
    usage: dict[str, Any] = {name: int(raw.get(name) or 0) for name in USAGE_FIELDS}
    usage["cost_usd"] = round(float(raw.get("cost_usd") or 0.0), 8)
    return usage


def zero_usage() -> dict[str, Any]:
    usage = whole_usage({})
    assert usage is not None
    return usage


class UsageStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.messages = db["messages"]

    async def spent_since(self, owner: Document, since: datetime) -> Spent:
        """Output tokens and cost of the answers of `owner` (a user's or a tenant's scope)
        begun at or after `since` (index `owner_created`, whose prefix serves a tenant too)."""
        pipeline: list[Document] = [
            {"$match": {**owner, "created_at": {"$gte": since}, "role": "assistant"}},
            {
                "$group": {
                    "_id": None,
                    "tokens": {"$sum": "$usage.output_tokens"},
                    "cost": {"$sum": "$usage.cost_usd"},
                }
            },
        ]
        async for row in await self.messages.aggregate(pipeline):
            return Spent(int(row.get("tokens") or 0), float(row.get("cost") or 0.0))
        return Spent(0, 0.0)

    async def daily(self, owner: Document, since: datetime) -> list[dict[str, Any]]:
        """The totals of each UTC day since `since` on which `owner` had answers, oldest first.

        Grouped in the database (index `owner_created`), so a reply is one row a day
        whatever the number of answers."""
        sums = {name: {"$sum": f"$usage.{name}"} for name in TOTALS}
        pipeline: list[Document] = [
            {"$match": {**owner, "created_at": {"$gte": since}, "role": "assistant"}},
            {
                "$group": {
                    "_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$created_at"}},
                    **sums,
                }
            },
            {"$sort": {"_id": 1}},
        ]
        days = []
        async for row in await self.messages.aggregate(pipeline):
            usage = whole_usage(row)
            assert usage is not None
            days.append({"date": row["_id"], **usage})
        return days
