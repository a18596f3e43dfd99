"""A conversation's messages as a tree: branches, siblings, and the path the model reads.

Each message keeps its `parent_id` and its `ancestors` (root first), written
once when it is created. A branch is then one message's ancestors plus itself,
so reading it costs one lookup by `_id` for each page, whatever the depth or
the number of branches: no walk up the tree one query per message. `seq`
stays unique per conversation and grows along every branch (a child is always
created after its parent), so sorting a branch by `seq` is the tree's order.

Lists of ids go to the database in slices of `ID_SLICE`: the embedded database
turns a long `$in` into an SQL expression too deep for SQLite.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from server.errors import NotFound, ValidationFailed
from server.storage.client import Document
from server.storage.terms import UNSEARCHED

ID_SLICE = 100
SIBLING_FIELDS = {"_id": 1, "parent_id": 1, "seq": 1}


def branch_of(leaf: Document) -> list[str]:
    """The ids from the root to `leaf`, in order."""
    return [*leaf.get("ancestors", ()), str(leaf["_id"])]


class MessageTree:
    def __init__(self, messages: AsyncCollection[Document]) -> None:
        self.messages = messages

    async def message_in(self, conversation_id: str, message_id: str, *, field: str) -> Document:
        """A message of this conversation; a 404 naming `field` for any other id."""
        doc = await self.messages.find_one(
            {"_id": message_id, "conversation_id": conversation_id}, UNSEARCHED
        )
        if doc is None:
            raise NotFound(f"No message {message_id!r} in this conversation ({field})")
        return doc

    async def answer_in(self, conversation_id: str, message_id: str, *, field: str) -> Document:
        """An assistant message of this conversation: what a question can follow or redo."""
        doc = await self.message_in(conversation_id, message_id, field=field)
        if doc.get("role") != "assistant":
            raise ValidationFailed(
                f"{field} must name an answer (an assistant message), not a user's message",
                [{"field": field, "message": "must be an assistant message"}],
            )
        return doc

    async def by_ids(self, ids: Sequence[str]) -> list[Document]:
        """These messages, in `seq` order (the tree's order along a branch)."""
        found: list[Document] = []
        for start in range(0, len(ids), ID_SLICE):
            found += await self.messages.find(
                {"_id": {"$in": list(ids[start : start + ID_SLICE])}}, UNSEARCHED
            ).to_list()
        return sorted(found, key=lambda doc: int(doc["seq"]))

    async def branch_page(
        self, conversation_id: str, leaf: Document | None, *, limit: int, before: int | None
    ) -> tuple[list[Document], int | None]:
        """The branch ending at `leaf`: the `limit` messages before seq `before`, oldest first.

        `before` is the `seq` of the first message of the page after this one (the
        cursor handed out). It is found on the branch by one lookup, so a page
        deep in a long branch costs what the first page costs.
        """
        if leaf is None:
            return [], None
        path = branch_of(leaf)
        end = len(path)
        if before is not None:
            end = await self._position(conversation_id, path, before)
        start = max(0, end - limit)
        page = await self.by_ids(path[start:end])
        return page, (int(page[0]["seq"]) if start > 0 and page else None)

    async def _position(self, conversation_id: str, path: list[str], before: int) -> int:
        """How many messages of `path` come before the one with seq `before`."""
        marker = await self.messages.find_one(
            {"conversation_id": conversation_id, "seq": before}, {"ancestors": 1}
        )
        if marker is not None:
            depth = len(marker.get("ancestors", ()))
            if depth < len(path) and path[depth] == marker["_id"]:
                return depth
        # Not on this branch (a cursor of another one): count what comes before it.
        earlier = 0
        for start in range(0, len(path), ID_SLICE):
            earlier += await self.messages.count_documents(
                {"_id": {"$in": path[start : start + ID_SLICE]}, "seq": {"$lt": before}}
            )
        return earlier

    async def siblings(self, conversation_id: str, docs: Sequence[Document]) -> dict[str, Any]:
        """For each message, `{"index", "count", "ids"}` among its parent's children, by seq."""
        parents = list({doc.get("parent_id") for doc in docs})
        children: dict[str | None, list[str]] = defaultdict(list)
        for start in range(0, len(parents), ID_SLICE):
            found = self.messages.find(
                {
                    "conversation_id": conversation_id,
                    "parent_id": {"$in": parents[start : start + ID_SLICE]},
                },
                SIBLING_FIELDS,
            ).sort("seq", ASCENDING)
            async for child in found:
                children[child.get("parent_id")].append(str(child["_id"]))
        placed: dict[str, Any] = {}
        for doc in docs:
            ids = children.get(doc.get("parent_id")) or [str(doc["_id"])]
            index = ids.index(doc["_id"]) if doc["_id"] in ids else 0
            placed[str(doc["_id"])] = {"index": index, "count": len(ids), "ids": ids}
        return placed

    async def newest_leaf(self, conversation_id: str, message: Document) -> Document:
        """The newest message below `message` (itself if it has none): always a leaf,
        since a child is created after its parent. Found by walking the
        conversation's messages newer than it, newest first, to the first one
        descended from it: the branch people last added to."""
        below = await (
            self.messages.find(
                {
                    "conversation_id": conversation_id,
                    "seq": {"$gt": message["seq"]},
                    "ancestors": message["_id"],
                },
                UNSEARCHED,
            )
            .sort("seq", DESCENDING)
            .limit(1)
            .to_list()
        )
        return below[0] if below else message
