"""What users spent: output tokens of their stored answers, for the daily budget.

Read from the answers themselves, not from a counter of this process, so the
budget holds across processes and restarts. An answer counts once it has
ended (its usage is stored then): a user's running turns can overshoot the
budget by at most their own length.
"""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from server.storage.client import Document


class UsageStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.messages = db["messages"]

    async def output_tokens_since(self, owner: Document, since: datetime) -> int:
        """Output tokens of the answers of `owner` (a user's or a tenant's scope) begun at or
        after `since` (index `owner_created`, whose prefix serves a tenant too)."""
        pipeline: list[Document] = [
            {"$match": {**owner, "created_at": {"$gte": since}, "role": "assistant"}},
            {"$group": {"_id": None, "tokens": {"$sum": "$usage.output_tokens"}}},
        ]
        async for row in await self.messages.aggregate(pipeline):
            return int(row.get("tokens") or 0)
        return 0
