"""What the change feed reads: conversations changed since a moment, deletions, running turns.

Every write to a conversation stamps it (`stamped`): `changed_at`, the writer's
clock at the write, and `revision`, a per-conversation counter the same
update increments, so that a version of a conversation is named exactly by
`(id, revision)`. A deletion leaves a tombstone (`tombstones`), kept for
SYNC_TOMBSTONE_DAYS by a TTL index. `updated_at` stays what it was, the last
*activity* the list is ordered by: a rename or a branch switch is a change a
device must learn, not activity.

Each read here is a range of one user's index entries (see `indexes.py`),
so its cost follows what changed, not how much the user has ever stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase

from server.identity import Identity
from server.storage.client import Document
from server.storage.turn_records import RUNNING

CHANGED_AT = "changed_at"
REVISION = "revision"


def stamped(update: Document, moment: datetime) -> Document:
    """A MongoDB update document that also marks the conversation changed at `moment`."""
    return {
        **update,
        "$set": {**update.get("$set", {}), CHANGED_AT: moment},
        "$inc": {**update.get("$inc", {}), REVISION: 1},
    }


def tombstone(identity: Identity, conversation_id: str, moment: datetime) -> Document:
    return {"_id": conversation_id, **identity.scope, "deleted_at": moment}


class ChangeStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.conversations = db["conversations"]
        self.tombstones = db["tombstones"]
        self.turns = db["turns"]
        self.messages = db["messages"]

    def changed(self, identity: Identity, floor: datetime | None) -> AsyncCursor[Document]:
        """The caller's conversations changed at or after `floor`; None: all of them."""
        query: dict[str, Any] = dict(identity.scope)
        if floor is not None:
            query[CHANGED_AT] = {"$gte": floor}
        order = [(CHANGED_AT, ASCENDING), ("_id", ASCENDING)]
        return self.conversations.find(query).sort(order)

    def deleted(self, identity: Identity, floor: datetime) -> AsyncCursor[Document]:
        """The caller's conversations deleted at or after `floor` (tombstones still kept)."""
        query = {**identity.scope, "deleted_at": {"$gte": floor}}
        return self.tombstones.find(query).sort([("deleted_at", ASCENDING), ("_id", ASCENDING)])

    def running(self, identity: Identity) -> AsyncCursor[Document]:
        """The caller's turns that storage says are running, in any process."""
        projection = {
            "turn_id": 1,
            "conversation_id": 1,
            "created_at": 1,
            "assistant_message_id": 1,
        }
        return self.turns.find({**identity.scope, "status": RUNNING}, projection)

    async def conversations_since(
        self, identity: Identity, floor: datetime | None
    ) -> list[Document]:
        return await self.changed(identity, floor).to_list()

    async def deletions_since(self, identity: Identity, floor: datetime) -> list[Document]:
        return await self.deleted(identity, floor).to_list()

    async def running_turns(self, identity: Identity) -> list[Document]:
        """Oldest first."""
        turns = await self.running(identity).to_list()
        return sorted(turns, key=lambda turn: (turn["created_at"], turn["turn_id"]))

    async def checkpointed_seqs(self, message_ids: list[str]) -> dict[str, int]:
        """The `seq` each running answer had reached at its last checkpoint (0: none yet)."""
        if not message_ids:
            return {}
        found = self.messages.find({"_id": {"$in": message_ids}}, {"last_seq": 1})
        return {doc["_id"]: int(doc.get("last_seq") or 0) async for doc in found}
