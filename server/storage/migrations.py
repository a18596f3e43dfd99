"""Stored documents of earlier versions brought to today's shape, once, at start-up.

Each step is idempotent (a second run finds nothing to do) and safe with
several processes starting at once: they may each copy a document, and the
unique `_id` keeps one.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from server.identity import Identity
from server.storage.turn_records import turn_key

log = logging.getLogger(__name__)

# Earlier turns had a random 24-hex `_id` (`new_id`); today's is a JSON array.
EARLIER_TURN_ID = {"_id": {"$regex": "^[0-9a-f]{24}$"}}


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
