"""A turn's storage: its idempotency claim, its two messages, checkpoints, the end.

The `turns` collection carries what the messages cannot: the per-user unique
`turn_id`, the owning process's lease (so a crashed process's turns can be
told from a live one's, even with many processes on one cluster), a
cancel request from another process, and the terminal outcome for replays.
The values these operations take and give back are in `turn_records.py`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from server.errors import Conflict, NotFound, StorageUnavailable
from server.identity import Identity
from server.storage.changes import REVISION, stamped
from server.storage.client import Document
from server.storage.inserts import insert_new, upsert_new
from server.storage.terms import FIELD, UNSEARCHED, terms
from server.storage.turn_records import (
    INTERRUPTED,
    RECOVERED,
    RUNNING,
    STREAMING,
    Ending,
    Lease,
    Outcome,
    Placement,
    Progress,
    TurnExists,
    TurnRecord,
    answer_fields,
    turn_key,
)
from server.storage.undo import StartUndo
from server.storage.values import now

log = logging.getLogger(__name__)

CHECKPOINT_SLICE = 100  # turns whose leases one checkpoint operation renews


class TurnStore:
    def __init__(self, db: AsyncDatabase[Document], owner: str, lease_seconds: float) -> None:
        self.turns = db["turns"]
        self.messages = db["messages"]
        self.conversations = db["conversations"]
        self.owner = owner  # this process, for leases
        self._lease = timedelta(seconds=lease_seconds)
        self._undoing: set[asyncio.Task[None]] = set()  # starts being undone (strong refs)

    async def find(self, identity: Identity, turn_id: str) -> Document | None:
        return await self.turns.find_one({"_id": turn_key(identity, turn_id)})

    async def begin(
        self,
        identity: Identity,
        turn_id: str,
        *,
        conversation: Document,
        content: str,
        model: str,
        new_conversation: bool,
        placement: Placement,
        attachments: list[Document] | None = None,
    ) -> tuple[TurnRecord, Document]:
        """Claim the turn id and the conversation's slot, then store both messages.

        Returns the turn's record and its conversation as the claim left it (for
        the change feed). Raises `TurnExists` (with the stored turn) if the turn id
        is taken, or `Conflict` if the conversation is busy. Four writes in three
        round trips, undone in reverse if one fails or the caller is cancelled, so
        a failed start never leaves a `running` turn holding the conversation
        with nothing running it.
        """
        record = TurnRecord.starting(
            identity, turn_id, str(conversation["_id"]), model, new_conversation, placement
        )
        undo = StartUndo(turn_id)
        begun: asyncio.Future[tuple[TurnRecord, Document]] = asyncio.ensure_future(
            self._begin(record, conversation, content, undo, attachments)
        )
        try:
            return await asyncio.shield(begun)
        except asyncio.CancelledError:
            # The caller was cancelled: its client left, or the database did not answer
            # in time. Undone in the background: a hung database must not hold the answer.
            undoing = asyncio.create_task(undo.after(begun))
            self._undoing.add(undoing)
            undoing.add_done_callback(self._undoing.discard)
            raise
        except BaseException as error:
            await asyncio.shield(undo.run())
            if isinstance(error, PyMongoError):
                raise StorageUnavailable(
                    "The message could not be saved, and nothing was kept. Try again."
                ) from error
            raise

    async def _begin(
        self,
        record: TurnRecord,
        conversation: Document,
        content: str,
        undo: StartUndo,
        attachments: list[Document] | None = None,
    ) -> tuple[TurnRecord, Document]:
        moment, identity, turn_id = record.created_at, record.identity, record.turn_id
        turn = record.turn_document(owner=self.owner, lease_expires_at=moment + self._lease)
        try:
            # The claim and the replay's read in one: the turn as it was, None if new.
            stored = await self.turns.find_one_and_update(
                {"_id": record.id}, upsert_new(turn), upsert=True
            )
        except DuplicateKeyError:  # a concurrent claim of the same id (MongoDB)
            raise Conflict(f"Turn {turn_id!r} already exists") from None
        if stored is not None:
            raise TurnExists(stored)
        undo.note(lambda: self.turns.delete_one({"_id": record.id, "status": RUNNING}))
        if record.new_conversation:  # built by the engine with the slot already held
            now_is = {
                **conversation,
                "current_leaf": record.assistant_message_id,
                "changed_at": moment,
            }
            await insert_new(self.conversations, [now_is])
            undo.note(lambda: self.conversations.delete_one({"_id": conversation["_id"]}))
            user_seq = 1
        else:
            # The slot, two seqs (a regenerate leaves one unused: seqs stay unique,
            # not dense) and the branch: the new answer is what clients see next.
            claim = {
                "running_turn_id": turn_id,
                "current_leaf": record.assistant_message_id,
                "updated_at": moment,
            }
            claimed = await self.conversations.find_one_and_update(
                {"_id": conversation["_id"], **identity.scope, "running_turn_id": None},
                stamped({"$set": claim, "$inc": {"next_seq": 2}}, moment),
                return_document=ReturnDocument.BEFORE,
            )
            if claimed is None:
                exists = await self.conversations.count_documents({"_id": conversation["_id"]})
                if not exists:
                    raise NotFound(f"No conversation {conversation['_id']!r}")
                raise Conflict("This conversation is already answering another message")
            leaf = claimed.get("current_leaf")
            undo.note(lambda: self._unclaim(str(conversation["_id"]), turn_id, leaf))
            user_seq = int(claimed["next_seq"])
            # As the claim left it, without reading it again.
            now_is = {
                **claimed,
                **claim,
                "next_seq": user_seq + 2,
                "changed_at": moment,
                REVISION: int(claimed.get(REVISION) or 0) + 1,
            }
        record = replace(record, assistant_seq=user_seq + 1)
        written = [record.assistant_document("")]
        if record.regenerate_of is None:
            written.insert(0, record.question_document(content, user_seq, attachments))
        await insert_new(self.messages, written)
        ids = [doc["_id"] for doc in written]
        undo.note(lambda: self.messages.delete_many({"_id": {"$in": ids}}))
        return record, now_is

    async def _free(
        self, conversation_id: str, turn_id: str, usage: Document | None = None
    ) -> Document | None:
        """Free the conversation's slot, adding the answer's `usage` to the conversation's
        running totals; the conversation as it is now (None: not held)."""
        moment = now()
        update: Document = {"$set": {"running_turn_id": None, "updated_at": moment}}
        if usage:
            update["$inc"] = {f"usage.{name}": value for name, value in usage.items()}
        return await self.conversations.find_one_and_update(
            {"_id": conversation_id, "running_turn_id": turn_id},
            stamped(update, moment),
            return_document=ReturnDocument.AFTER,
        )

    async def _unclaim(self, conversation_id: str, turn_id: str, leaf: str | None) -> None:
        """Undo a start's claim: free the slot and put back the branch clients saw."""
        moment = now()
        update = {"running_turn_id": None, "current_leaf": leaf, "updated_at": moment}
        await self.conversations.update_one(
            {"_id": conversation_id, "running_turn_id": turn_id},
            stamped({"$set": update}, moment),
        )

    async def checkpoint_many(
        self, entries: list[tuple[TurnRecord, Progress | None]]
    ) -> dict[str, Lease]:
        """Renew the leases of this process's running turns and save their changed answers.

        Three operations per `CHECKPOINT_SLICE` turns. A turn whose state is
        not `held` is `cancel_requested` (another process asked) or `lost`
        (recovered by another process, which thought this one dead): it must
        stop, and leave that ending alone.
        """
        moment = now()
        all_ids = [record.id for record, _ in entries]
        states: dict[str, Lease] = {}
        projection = {"status": 1, "owner": 1, "cancel_requested": 1}
        # In slices: the embedded database turns a long `$in` into an expression too deep
        # for SQLite (it failed at 500 turns, and the leases then ran out under them).
        for start in range(0, len(all_ids), CHECKPOINT_SLICE):
            ids = all_ids[start : start + CHECKPOINT_SLICE]
            await self.turns.update_many(
                {"_id": {"$in": ids}, "status": RUNNING, "owner": self.owner},
                {"$set": {"lease_expires_at": moment + self._lease}},
            )
            for doc in await self.turns.find({"_id": {"$in": ids}}, projection).to_list():
                if doc["status"] == RUNNING and doc.get("owner") == self.owner:
                    held: Lease = "cancel_requested" if doc.get("cancel_requested") else "held"
                    states[doc["_id"]] = held
                else:
                    states[doc["_id"]] = "ended" if doc.get("owner") == self.owner else "lost"
        texts = [
            UpdateOne(
                {"_id": record.assistant_message_id, "status": STREAMING},
                {
                    "$set": {
                        "content": progress.text,
                        "blocks": progress.blocks,
                        # How far the turn had got: told by `GET /api/turns?status=running`.
                        "last_seq": progress.seq,
                        "updated_at": moment,
                    }
                },
            )
            for record, progress in entries
            if progress is not None and states.get(record.id) in ("held", "cancel_requested")
        ]
        if texts:
            await self.messages.bulk_write(texts, ordered=False)
        return states

    async def request_cancel(self, identity: Identity, turn_id: str) -> bool:
        """Flag a turn running in another process; its owner stops it at its next checkpoint."""
        result = await self.turns.update_one(
            {"_id": turn_key(identity, turn_id), "status": RUNNING},
            {"$set": {"cancel_requested": True}},
        )
        return result.matched_count == 1

    async def finalise(
        self, record: TurnRecord, progress: Progress, outcome: Outcome, final_seq: int
    ) -> Ending:
        """Write the ending, if this process still owns the turn; return the turn as it ended.

        Safe to repeat after a failure: the claim matches this process's own
        ending too, so a retry finishes the writes a failed attempt left undone.
        """
        text = progress.text
        answer = answer_fields(
            record.identity, text, progress.blocks, outcome.usage, outcome.stop_reason
        )
        mine = {"_id": record.id, "owner": self.owner, "status": {"$in": [RUNNING, outcome.status]}}
        ended = await self._end(
            mine, outcome.status, outcome.error, final_seq=final_seq, answer=answer
        )
        stand_in = record.ended_answer(progress, outcome)
        if ended is not None:
            turn, message, conversation = ended
            return Ending(turn, message or stand_in, ours=True, conversation=conversation)
        # Ended elsewhere: keep that ending, and add the text it could not know.
        await self.messages.update_one(
            {"_id": record.assistant_message_id, "status": {"$ne": STREAMING}},
            {"$set": {key: answer[key] for key in ("content", "blocks", FIELD)}},
        )
        stored_turn = await self.turns.find_one({"_id": record.id})
        message = await self.messages.find_one({"_id": record.assistant_message_id}, UNSEARCHED)
        fallback = record.turn_document(status=outcome.status, error=outcome.error)
        return Ending(stored_turn or fallback, message or stand_in, ours=False)

    async def restore(self, entry: Document) -> bool:
        """Store an ending a process acknowledged from its journal (turns/journal.py) and may
        have died before storing; False if the turn is gone.

        The turn is claimed whether still `running`, marked `interrupted` by a
        recovery that got there first with an older checkpoint (the journal holds
        what its user was told), or ended already: a store the crash cut short
        after its first write is finished; one that was whole is written again,
        the same.
        """
        identity = Identity(str(entry["tenant_id"]), str(entry["user_id"]))
        answer = answer_fields(
            identity, str(entry["content"]), entry["blocks"], entry["usage"], entry["stop_reason"]
        )
        claim = {"_id": entry["key"], "status": {"$in": [RUNNING, "interrupted", entry["status"]]}}
        ended = await self._end(
            claim, entry["status"], None, final_seq=entry["final_seq"], answer=answer
        )
        return ended is not None

    async def recover(self, *, everything: bool) -> list[Document]:
        """Mark turns of dead processes `interrupted`, free their conversations; return those.

        `everything`: at start-up of the embedded database, which only this
        process can use, no running turn can be alive. Otherwise only turns
        of other processes whose owner stopped renewing its lease.
        """
        query: Document = {"status": RUNNING}
        if not everything:
            # Never this process's own: they are alive, however late a checkpoint
            # (the database overloaded) left their leases.
            query.update({"lease_expires_at": {"$lt": now()}, "owner": {"$ne": self.owner}})
        recovered: list[Document] = []
        for doc in await self.turns.find(query, projection={"_id": 1}).to_list():
            # The claim takes the turn from its owner: a live owner finds it lost.
            claim = {**query, "_id": doc["_id"]}
            ended = await self._end(claim, "interrupted", INTERRUPTED, owner=RECOVERED)
            if ended is not None:
                recovered.append(ended[0])
        return recovered

    async def _end(
        self,
        claim: Document,
        status: str,
        error: dict[str, Any] | None,
        *,
        final_seq: int | None = None,
        answer: Document | None = None,
        owner: str | None = None,
    ) -> tuple[Document, Document | None, Document | None] | None:
        """The one way a turn ends in storage, for its owner and for recovery alike.

        The turn is claimed first (None when `claim` no longer matches), then
        its answer gets the same status (None when the conversation was
        deleted meanwhile), then the conversation is freed (and returned, for
        the change feed; None when deleted meanwhile).
        """
        moment = now()
        ending: Document = {"status": status, "error": error, "updated_at": moment}
        if final_seq is not None:
            ending["final_seq"] = final_seq
        if owner is not None:
            ending["owner"] = owner
        turn = await self.turns.find_one_and_update(
            claim, {"$set": ending}, return_document=ReturnDocument.AFTER
        )
        if turn is None:
            return None
        message = await self.messages.find_one_and_update(
            {"_id": turn["assistant_message_id"]},
            {"$set": {"status": status, "error": error, "updated_at": moment, **(answer or {})}},
            UNSEARCHED,
            return_document=ReturnDocument.AFTER,
        )
        if answer is None and message is not None:  # recovered: its last checkpoint's words
            text = str(message.get("content") or "")
            await self.messages.update_one(
                {"_id": message["_id"]},
                {"$set": {FIELD: terms(str(turn["tenant_id"]), str(turn["user_id"]), text)}},
            )
        usage = (answer or {}).get("usage")
        conversation = await self._free(turn["conversation_id"], turn["turn_id"], usage)
        return turn, message, conversation

    async def assistant_message(self, doc: Document) -> Document | None:
        """The answer of a stored turn, for replays and resumes."""
        message_id = doc.get("assistant_message_id")
        return await self.messages.find_one({"_id": message_id}, UNSEARCHED) if message_id else None
