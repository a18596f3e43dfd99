"""A turn's records: its idempotency claim, its two messages, checkpoints, the end.

The `turns` collection carries what the messages cannot: the per-user unique
`turn_id`, the owning process's lease (so a crashed process's turns can be
told from a live one's, even with many processes on one cluster), a
cancel request from another process, and the terminal outcome for replays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from server.errors import Conflict, NotFound
from server.identity import Identity
from server.storage.client import Document
from server.storage.conversations import new_id, now

RUNNING = "running"


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """The ids a running turn needs, fixed when it begins."""

    id: str
    turn_id: str
    identity: Identity
    conversation_id: str
    user_message_id: str
    assistant_message_id: str
    assistant_seq: int
    model: str
    created_at: datetime
    new_conversation: bool

    def assistant_message(self, text: str, status: str = "streaming") -> dict[str, Any]:
        """The answer as a client sees it, before (or instead of) reading it back."""
        return {
            "id": self.assistant_message_id,
            "conversation_id": self.conversation_id,
            "seq": self.assistant_seq,
            "role": "assistant",
            "content": text,
            "status": status,
            "turn_id": self.turn_id,
            "model": self.model,
            "usage": None,
            "stop_reason": None,
            "error": None,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a turn ended: what the finaliser writes, once."""

    status: str  # complete, cancelled, interrupted, error
    usage: dict[str, int] | None = None
    stop_reason: str | None = None
    error: dict[str, Any] | None = None


class TurnStore:
    def __init__(self, db: AsyncDatabase[Document], owner: str, lease_seconds: float) -> None:
        self.turns = db["turns"]
        self.messages = db["messages"]
        self.conversations = db["conversations"]
        self.owner = owner  # this process, for leases
        self._lease = timedelta(seconds=lease_seconds)

    async def find(self, identity: Identity, turn_id: str) -> Document | None:
        return await self.turns.find_one({**identity.scope, "turn_id": turn_id})

    async def begin(
        self,
        identity: Identity,
        turn_id: str,
        *,
        conversation: Document,
        content: str,
        model: str,
        new_conversation: bool,
    ) -> TurnRecord:
        """Claim the turn id and the conversation's slot, then store both messages.

        Raises `Conflict` if the turn id is taken or the conversation is busy.
        """
        moment = now()
        record_id, user_id, assistant_id = new_id(), new_id(), new_id()
        try:
            await self.turns.insert_one(
                {
                    "_id": record_id,
                    **identity.scope,
                    "turn_id": turn_id,
                    "conversation_id": conversation["_id"],
                    "status": RUNNING,
                    "owner": self.owner,
                    "lease_expires_at": moment + self._lease,
                    "model": model,
                    "user_message_id": user_id,
                    "assistant_message_id": assistant_id,
                    "created_at": moment,
                    "updated_at": moment,
                }
            )
        except DuplicateKeyError:
            raise Conflict(f"Turn {turn_id!r} already exists") from None
        if new_conversation:  # built by the engine with the slot already held
            await self.conversations.insert_one(conversation)
            claimed: Document | None = conversation
            user_seq = 1
        else:
            claimed = await self.conversations.find_one_and_update(
                {"_id": conversation["_id"], **identity.scope, "running_turn_id": None},
                {
                    "$set": {"running_turn_id": turn_id, "updated_at": moment},
                    "$inc": {"next_seq": 2},
                },
                return_document=ReturnDocument.BEFORE,
            )
            user_seq = int(claimed["next_seq"]) if claimed else 0
        if claimed is None:
            await self.turns.delete_one({"_id": record_id})
            exists = await self.conversations.count_documents({"_id": conversation["_id"]})
            if not exists:
                raise NotFound(f"No conversation {conversation['_id']!r}")
            raise Conflict("This conversation is already answering another message")
        base = {
            "conversation_id": conversation["_id"],
            **identity.scope,
            "turn_id": turn_id,
            "model": model,
            "usage": None,
            "stop_reason": None,
        }
        await self.messages.insert_many(
            [
                {
                    "_id": user_id,
                    **base,
                    "seq": user_seq,
                    "role": "user",
                    "content": content,
                    "status": "complete",
                    "created_at": moment,
                    "updated_at": moment,
                },
                {
                    "_id": assistant_id,
                    **base,
                    "seq": user_seq + 1,
                    "role": "assistant",
                    "content": "",
                    "status": "streaming",
                    "created_at": moment,
                    "updated_at": moment,
                },
            ]
        )
        return TurnRecord(
            id=record_id,
            turn_id=turn_id,
            identity=identity,
            conversation_id=str(conversation["_id"]),
            user_message_id=user_id,
            assistant_message_id=assistant_id,
            assistant_seq=user_seq + 1,
            model=model,
            created_at=moment,
            new_conversation=new_conversation,
        )

    async def checkpoint(self, record: TurnRecord, text: str | None) -> bool:
        """Save the partial text (if changed) and renew the lease.

        Returns True when another process asked for this turn to be cancelled.
        """
        moment = now()
        if text is not None:
            await self.messages.update_one(
                {"_id": record.assistant_message_id, "status": "streaming"},
                {"$set": {"content": text, "updated_at": moment}},
            )
        doc = await self.turns.find_one_and_update(
            {"_id": record.id, "status": RUNNING},
            {"$set": {"lease_expires_at": moment + self._lease}},
            projection={"cancel_requested": 1},
        )
        return bool(doc and doc.get("cancel_requested"))

    async def request_cancel(self, identity: Identity, turn_id: str) -> bool:
        """Flag a turn running in another process; its owner stops it at its next checkpoint."""
        result = await self.turns.update_one(
            {**identity.scope, "turn_id": turn_id, "status": RUNNING},
            {"$set": {"cancel_requested": True}},
        )
        return result.matched_count == 1

    async def finalise(
        self, record: TurnRecord, text: str, outcome: Outcome, final_seq: int
    ) -> Document:
        """Write the ending everywhere it shows; return the stored assistant message."""
        moment = now()
        changes: Document = {
            "content": text,
            "status": outcome.status,
            "usage": outcome.usage,
            "stop_reason": outcome.stop_reason,
            "error": outcome.error,
            "updated_at": moment,
        }
        message = await self.messages.find_one_and_update(
            {"_id": record.assistant_message_id},
            {"$set": changes},
            return_document=ReturnDocument.AFTER,
        )
        await self.turns.update_one(
            {"_id": record.id},
            {
                "$set": {
                    "status": outcome.status,
                    "final_seq": final_seq,
                    "error": outcome.error,
                    "updated_at": moment,
                }
            },
        )
        await self.conversations.update_one(
            {"_id": record.conversation_id, "running_turn_id": record.turn_id},
            {"$set": {"running_turn_id": None, "updated_at": moment}},
        )
        if message is None:  # the conversation was deleted meanwhile
            message = {
                "_id": record.assistant_message_id,
                "conversation_id": record.conversation_id,
                "seq": record.assistant_seq,
                "role": "assistant",
                "turn_id": record.turn_id,
                "model": record.model,
                "created_at": record.created_at,
                **changes,
            }
        return message

    async def recover(self, *, everything: bool) -> int:
        """Mark turns of dead processes `interrupted` and free their conversations.

        `everything`: at start-up of the embedded database, which only this
        process can use, no running turn can be alive. Otherwise only turns
        whose owner stopped renewing its lease.
        """
        query: Document = {"status": RUNNING}
        if not everything:
            query["lease_expires_at"] = {"$lt": now()}
        count = 0
        for doc in await self.turns.find(query).to_list():
            moment = now()
            claimed = await self.turns.update_one(
                {"_id": doc["_id"], "status": RUNNING},
                {"$set": {"status": "interrupted", "updated_at": moment}},
            )
            if claimed.modified_count == 0:
                continue
            count += 1
            await self.messages.update_many(
                {
                    "conversation_id": doc["conversation_id"],
                    "turn_id": doc["turn_id"],
                    "role": "assistant",
                    "status": "streaming",
                },
                {"$set": {"status": "interrupted", "updated_at": moment}},
            )
            await self.conversations.update_one(
                {"_id": doc["conversation_id"], "running_turn_id": doc["turn_id"]},
                {"$set": {"running_turn_id": None}},
            )
        return count

    async def assistant_message(self, doc: Document) -> Document | None:
        """The answer of a stored turn, for replays and resumes."""
        message_id = doc.get("assistant_message_id")
        return await self.messages.find_one({"_id": message_id}) if message_id else None
