"""A change pushed to a user's devices, and the three kinds there are.

Built where the change was stored (the REST edge, the turn engine), from the
document as stored, so a push says exactly what `/api/sync` would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from server.identity import Identity
from server.storage.client import Document
from server.storage.conversations import public_conversation
from server.sync.catchup import stamp_of, version_of
from server.sync.cursor import DELETED, SyncCursor

ChangeType = Literal["conversation.changed", "conversation.deleted", "turn.running"]


@dataclass(frozen=True, slots=True)
class Change:
    identity: Identity
    type: ChangeType
    key: str  # the conversation's id, or the turn's
    payload: dict[str, Any]  # the frame's fields besides `type` and `cursor`
    cursor: SyncCursor
    # The socket whose request made it: it knows already (a turn it started).
    origin: str | None = None

    def frame(self, cursor: SyncCursor | None = None) -> dict[str, Any]:
        return {"type": self.type, **self.payload, "cursor": (cursor or self.cursor).encode()}


def conversation_changed(
    identity: Identity, conversation: Document, origin: str | None = None
) -> Change:
    cursor = SyncCursor.at(stamp_of(conversation), version_of(conversation))
    payload = {"conversation": public_conversation(conversation)}
    return Change(
        identity, "conversation.changed", str(conversation["_id"]), payload, cursor, origin
    )


def conversation_deleted(identity: Identity, tombstone: Document) -> Change:
    conversation_id = str(tombstone["_id"])
    cursor = SyncCursor.at(tombstone["deleted_at"], (conversation_id, DELETED))
    payload = {"conversation_id": conversation_id}
    return Change(identity, "conversation.deleted", conversation_id, payload, cursor)


def running_turn(
    turn_id: str, conversation_id: str, started_at: datetime, last_seq: int
) -> dict[str, Any]:
    """A running turn as `GET /api/turns?status=running`, `/api/sync` and `turn.running` tell it."""
    return {
        "turn_id": turn_id,
        "conversation_id": conversation_id,
        "started_at": started_at,
        "last_seq": last_seq,
    }


def turn_running(
    identity: Identity, turn: dict[str, Any], conversation: Document, origin: str | None = None
) -> Change:
    """A turn started: its cursor is its conversation's change (the start claimed it)."""
    cursor = SyncCursor.at(stamp_of(conversation), version_of(conversation))
    return Change(identity, "turn.running", str(turn["turn_id"]), {"turn": turn}, cursor, origin)
