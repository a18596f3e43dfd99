"""Stored documents of earlier versions brought to today's shape.

Each step is idempotent (a second run finds nothing to do) and safe with
several processes starting at once: they may each copy a document, and the
unique `_id` keeps one.

Conversations stored before messages formed a tree are read as the one chain
they were. Such a conversation has no `current_leaf`; its messages have no
`parent_id`, and each followed the one before it in `seq`. It is linked up the
first time a turn, a branch read or a branch switch touches it (`linked`), and
a background pass links the rest after start-up (`link_all`): no downtime and
no migration step. Two processes linking the same conversation write the same
values, and a message that already has a parent is never rewritten.

Messages stored before search terms (storage/terms.py) get them from a
background pass after start-up (`index_all`); until it reaches a message,
search does not find it. Each start looks once (one query, which finds none
once all have terms): no record of a finished pass is kept, because on the
embedded database writing one (a first document in a collection, while
requests ran) made a concurrent read of conversations return no rows, in 4
runs of 5 of the sync tests; docs/decisions.md says what is known of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from server.identity import Identity
from server.storage.changes import stamped
from server.storage.client import Document
from server.storage.terms import FIELD, with_terms
from server.storage.turn_records import turn_key
from server.storage.values import now

log = logging.getLogger(__name__)

BATCH = 100  # documents a background pass reads at a time
PAUSE_SECONDS = 0.05  # between batches: live requests come first
# Earlier turns had a random 24-hex `_id` (`new_id`); today's is a JSON array.
EARLIER_TURN_ID = {"_id": {"$regex": "^[0-9a-f]{24}$"}}
# Finished messages of before search terms (a streaming one gets its terms when it ends).
UNINDEXED = {FIELD: {"$exists": False}, "status": {"$ne": "streaming"}}
INDEXING = {"content": 1, "tenant_id": 1, "user_id": 1}


async def migrate(db: AsyncDatabase[dict[str, Any]]) -> None:
    moved = await rekey_turns(db)
    if moved:
        log.warning("moved %d turn(s) of an earlier version to (tenant, user, turn_id) keys", moved)


async def rekey_turns(db: AsyncDatabase[dict[str, Any]]) -> int:
    """Give turns stored before the turn's `_id` became its (tenant, user, turn_id) their new
    key, so that their `turn_id`s stay idempotency keys (a replay, a 409) after an upgrade."""
    turns, moved = db["turns"], 0
    async for turn in turns.find(EARLIER_TURN_ID):
        identity = Identity(str(turn["tenant_id"]), str(turn["user_id"]))
        # DuplicateKeyError: copied already (by another process), or claimed anew since.
        with contextlib.suppress(DuplicateKeyError):
            await turns.insert_one({**turn, "_id": turn_key(identity, str(turn["turn_id"]))})
        await turns.delete_one({"_id": turn["_id"]})
        moved += 1
    return moved


def is_linked(conversation: Document) -> bool:
    return "current_leaf" in conversation


async def linked(db: AsyncDatabase[Document], conversation: Document) -> Document:
    """`conversation` with its messages linked as a chain, if they were not yet."""
    if is_linked(conversation):
        return conversation
    await link(db, str(conversation["_id"]))
    return await db["conversations"].find_one({"_id": conversation["_id"]}) or conversation


async def link(db: AsyncDatabase[Document], conversation_id: str) -> None:
    """Give each message of the chain its parent and ancestors; the last one is the leaf."""
    messages = db["messages"]
    chain = await (
        messages.find({"conversation_id": conversation_id}, {"_id": 1, "parent_id": 1})
        .sort("seq", ASCENDING)
        .to_list()
    )
    ancestors: list[str] = []
    updates = []
    for message in chain:
        if "parent_id" not in message:
            parent = ancestors[-1] if ancestors else None
            updates.append(
                UpdateOne(
                    {"_id": message["_id"], "parent_id": {"$exists": False}},
                    {"$set": {"parent_id": parent, "ancestors": list(ancestors)}},
                )
            )
        ancestors.append(str(message["_id"]))
    if updates:
        await messages.bulk_write(updates, ordered=True)
    # A change devices learn through the feed: the conversation now shows its leaf.
    await db["conversations"].update_one(
        {"_id": conversation_id, "current_leaf": {"$exists": False}},
        stamped({"$set": {"current_leaf": ancestors[-1] if ancestors else None}}, now()),
    )


async def link_all(db: AsyncDatabase[Document]) -> int:
    """Link every conversation stored before the tree; returns how many it linked."""
    count = 0
    while True:
        try:
            batch = await (
                db["conversations"]
                .find({"current_leaf": {"$exists": False}}, {"_id": 1})
                .limit(BATCH)
                .to_list()
            )
            for conversation in batch:
                await link(db, str(conversation["_id"]))
        except PyMongoError as error:  # tried again at the next start; touched ones link anyway
            log.warning("linking stored conversations as trees stopped: %s", error)
            return count
        count += len(batch)
        if len(batch) < BATCH:
            if count:
                log.info("linked %d conversation(s) stored before branches", count)
            return count
        await asyncio.sleep(PAUSE_SECONDS)


async def index_all(db: AsyncDatabase[Document]) -> int:
    """Give each finished message stored before search terms its terms; returns how many.

    In batches of `BATCH` with a pause between them, live requests first."""
    messages = db["messages"]
    count = 0
    try:
        while True:
            batch = await messages.find(UNINDEXED, INDEXING).limit(BATCH).to_list()
            if batch:
                await messages.bulk_write(
                    [
                        UpdateOne(
                            {"_id": message["_id"], FIELD: {"$exists": False}},
                            {"$set": {FIELD: with_terms(message)[FIELD]}},
                        )
                        for message in batch
                    ],
                    ordered=False,
                )
            count += len(batch)
            if len(batch) < BATCH:
                break
            await asyncio.sleep(PAUSE_SECONDS)
    except PyMongoError as error:  # tried again at the next start
        log.warning("indexing stored messages for search stopped: %s", error)
        return count
    if count:
        log.info("indexed %d message(s) stored before search terms", count)
    return count
