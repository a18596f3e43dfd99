"""The conversation list: filters, pinned first, range cursors; projects and tags with counts.

A page is read in at most two index ranges: the pinned conversations, then the
others, each newest activity first. The cursor names the segment it stopped in
(`pinned`), the last `updated_at` and `_id`, so the next page resumes inside the
right range; page N costs what page 1 costs. Conversations stored before pins
have no `pinned` field: `{"$in": [False, None]}` reads them as unpinned, with
no migration.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from server.errors import ValidationFailed
from server.identity import Identity
from server.storage.client import Document

RECENT_FIRST = [("updated_at", DESCENDING), ("_id", DESCENDING)]
UNPINNED: dict[str, Any] = {"$in": [False, None]}  # None: also stored before pins existed
MAX_LABELS = 1000  # projects or tags one list answers with, by name


@dataclass(frozen=True, slots=True)
class ListFilter:
    """What `GET /api/conversations` narrows to; None: not narrowed by it.

    `unfiled`: in no project, `project: null` (which also matches a conversation
    stored before projects, with no field): a point of index `owner_project`."""

    archived: bool = False
    project: str | None = None
    tag: str | None = None
    pinned: bool | None = None
    unfiled: bool = False

    def query(self, identity: Identity) -> dict[str, Any]:
        query: dict[str, Any] = {**identity.scope, "archived": self.archived}
        if self.unfiled:
            query["project"] = None
        elif self.project is not None:
            query["project"] = self.project
        if self.tag is not None:
            query["tags"] = self.tag
        return query


@dataclass(frozen=True, slots=True)
class ListCursor:
    pinned: bool
    updated_at: datetime
    last_id: str

    def encode(self) -> str:
        raw = orjson.dumps([self.updated_at.isoformat(), self.last_id, self.pinned])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> ListCursor:
        """A cursor of this version, or of the one before pins (read as unpinned)."""
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            stamp, last_id, *rest = orjson.loads(base64.urlsafe_b64decode(padded))
            pinned = rest[0] if rest else False
            moment = datetime.fromisoformat(stamp)
            if not isinstance(last_id, str) or not isinstance(pinned, bool) or len(rest) > 1:
                raise ValueError(cursor)
            if moment.tzinfo is None:
                raise ValueError(cursor)
            # In UTC, as BSON stores it: a forged offset at the edge of time overflows here,
            # not later inside the driver.
            moment = moment.astimezone(UTC)
        except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError):
            raise ValidationFailed(
                "The cursor is not one this service issued",
                [{"field": "cursor", "message": "invalid cursor"}],
            ) from None
        return cls(pinned, moment, last_id)

    def after(self) -> dict[str, Any]:
        """The rest of this cursor's segment."""
        return {
            "$or": [
                {"updated_at": {"$lt": self.updated_at}},
                {"updated_at": self.updated_at, "_id": {"$lt": self.last_id}},
            ]
        }


async def list_page(
    conversations: AsyncCollection[Document],
    identity: Identity,
    where: ListFilter,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Document], str | None]:
    """Pinned first, then by last activity; `cursor` is the `next_cursor` of the page before."""
    resume = ListCursor.decode(cursor) if cursor is not None else None
    segments = [True, False] if where.pinned is None else [where.pinned]
    if resume is not None:  # the segments before the cursor's are read already
        segments = segments[segments.index(resume.pinned) :] if resume.pinned in segments else []
    docs: list[Document] = []
    for pinned in segments:
        query = {**where.query(identity), "pinned": True if pinned else UNPINNED}
        if resume is not None and resume.pinned == pinned:
            query.update(resume.after())
        docs += (
            await conversations.find(query)
            .sort(RECENT_FIRST)
            .limit(limit + 1 - len(docs))
            .to_list()
        )
        if len(docs) > limit:
            break
    if len(docs) <= limit:
        return docs, None
    last = docs[limit - 1]
    mark = ListCursor(bool(last.get("pinned")), last["updated_at"], str(last["_id"]))
    return docs[:limit], mark.encode()


async def count_projects(
    conversations: AsyncCollection[Document], identity: Identity, *, archived: bool
) -> list[dict[str, Any]]:
    """The caller's projects with how many conversations each holds, by name."""
    match = {**identity.scope, "archived": archived, "project": {"$type": "string"}}
    return await _counts(conversations, [{"$match": match}], "$project")


async def count_tags(
    conversations: AsyncCollection[Document], identity: Identity, *, archived: bool
) -> list[dict[str, Any]]:
    """The caller's tags with how many conversations carry each, by name."""
    match = {**identity.scope, "archived": archived, "tags": {"$type": "string"}}
    return await _counts(conversations, [{"$match": match}, {"$unwind": "$tags"}], "$tags")


async def _counts(
    conversations: AsyncCollection[Document], stages: list[Document], field: str
) -> list[dict[str, Any]]:
    """Counted by the database (one pass over the caller's matching index entries)."""
    pipeline = [
        *stages,
        {"$group": {"_id": field, "count": {"$sum": 1}}},
        {"$sort": {"_id": 1}},
        {"$limit": MAX_LABELS},
    ]
    found = await (await conversations.aggregate(pipeline)).to_list()
    return [{"name": row["_id"], "count": row["count"]} for row in found]
