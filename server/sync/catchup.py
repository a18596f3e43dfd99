"""What `GET /api/sync` answers, from what storage found: pure, so its rules are plain.

- Every conversation stamped at or after the cursor's floor is sent, whole,
  unless the cursor lists that very version as sent.
- A deletion wins: a conversation both changed and deleted is only deleted
  (its tombstone is written before the conversation goes, so both may show).
- The new cursor's floor is the read's start minus the margin (never below
  the old floor's), listing every version at or after it that the client now has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from server.storage.client import Document
from server.sync.cursor import DELETED, MARGIN, SENT_MAX, SyncCursor, Version

EPOCH = datetime.fromtimestamp(0, UTC)


def version_of(conversation: Document) -> Version:
    return str(conversation["_id"]), int(conversation.get("revision") or 0)


def stamp_of(conversation: Document) -> datetime:
    moment: datetime = conversation.get("changed_at") or EPOCH
    return moment


@dataclass(frozen=True, slots=True)
class CatchUp:
    conversations: list[Document]  # changed or created, as stored
    deleted: list[str]
    cursor: SyncCursor


def catch_up(
    since: SyncCursor | None,
    started: datetime,
    conversations: list[Document],
    deletions: list[Document],
) -> CatchUp:
    """`conversations` and `deletions` are all those stamped at or after `since.floor`
    (every live conversation and no deletion when `since` is None), read after `started`."""
    had = since.sent if since is not None else frozenset()
    gone = {str(t["_id"]) for t in deletions}
    changed = [c for c in conversations if str(c["_id"]) not in gone and version_of(c) not in had]
    deleted = [str(t["_id"]) for t in deletions if (str(t["_id"]), DELETED) not in had]
    floor = started - MARGIN
    if since is not None:
        floor = max(floor, since.floor)
    # Everything read at or after the new floor, the client now has (newest kept first).
    window: list[tuple[datetime, Version]] = [
        (stamp_of(c), version_of(c)) for c in conversations if stamp_of(c) >= floor
    ]
    window += [
        (t["deleted_at"], (str(t["_id"]), DELETED)) for t in deletions if t["deleted_at"] >= floor
    ]
    window.sort(key=lambda item: item[0], reverse=True)
    sent = frozenset(version for _, version in window[:SENT_MAX])
    return CatchUp(changed, deleted, SyncCursor(floor, sent))
