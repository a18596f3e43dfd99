"""Conversations and messages, in the domain's words.

Every query is scoped to an `Identity`: a document that is not the caller's is
indistinguishable from one that does not exist. Lists page on indexed keys
with range cursors, never `skip`, so page N costs what page 1 costs.
"""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from server.errors import NotFound, ValidationFailed
from server.identity import Identity
from server.storage.changes import stamped, tombstone
from server.storage.client import Document
from server.storage.inserts import insert_new
from server.storage.migrations import linked
from server.storage.shelves import ListFilter, count_projects, count_tags, list_page
from server.storage.terms import UNSEARCHED, WORD, fold, matching, words
from server.storage.tree import MessageTree
from server.storage.usage import whole_usage
from server.storage.values import new_id, now

MESSAGE_FIELDS = (
    "conversation_id",
    "seq",
    "parent_id",
    "role",
    "content",
    "blocks",
    "status",
    "turn_id",
    "model",
    "usage",
    "stop_reason",
    "error",
    "feedback",
    "created_at",
)

ORGANISING = frozenset({"project", "pinned", "tags"})


def public_conversation(doc: Document) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "title": doc.get("title", ""),
        "model": doc.get("model"),
        "system_prompt": doc.get("system_prompt"),
        "thinking": doc.get("thinking"),
        "archived": doc.get("archived", False),
        "project": doc.get("project"),
        "pinned": bool(doc.get("pinned", False)),
        "tags": doc.get("tags") or [],
        "current_leaf": doc.get("current_leaf"),
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
        "usage": whole_usage(doc.get("usage") or {}),
    }


def public_message(doc: Document) -> dict[str, Any]:
    message = {"id": doc["_id"], **{name: doc.get(name) for name in MESSAGE_FIELDS}}
    message["usage"] = whole_usage(message["usage"])
    return message


def conversation_document(
    identity: Identity,
    *,
    title: str,
    model: str,
    system_prompt: str | None,
    thinking: Document | None = None,
    running_turn_id: str | None = None,
    organised: Document | None = None,
) -> Document:
    """A new conversation; `next_seq` numbers its messages, `running_turn_id` is its one slot.

    `changed_at` and `revision` are the change feed's (`storage/changes.py`); `organised`
    sets any of `project`, `pinned`, `tags`."""
    moment = now()
    return {
        "_id": new_id(),
        **identity.scope,
        "title": title,
        "model": model,
        "system_prompt": system_prompt,
        "thinking": thinking,
        "archived": False,
        "project": None,
        "pinned": False,
        "tags": [],
        **(organised or {}),
        "current_leaf": None,  # present: a conversation of the tree, never linked again
        "next_seq": 3 if running_turn_id else 1,
        "running_turn_id": running_turn_id,
        "created_at": moment,
        "updated_at": moment,
        "changed_at": moment,
        "revision": 1,
    }


class Store:
    """Conversation and message storage for the HTTP API and the turn engine."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.conversations = db["conversations"]
        self.messages = db["messages"]
        self.tombstones = db["tombstones"]
        self.tree = MessageTree(self.messages)

    async def ping(self) -> None:
        await self.db.command("ping")

    # Conversations

    async def create_conversation(
        self,
        identity: Identity,
        *,
        title: str = "",
        model: str,
        system_prompt: str | None = None,
        thinking: Document | None = None,
        organised: Document | None = None,
    ) -> Document:
        doc = conversation_document(
            identity,
            title=title,
            model=model,
            system_prompt=system_prompt,
            thinking=thinking,
            organised=organised,
        )
        await insert_new(self.conversations, [doc])  # not insert_one: see inserts.py
        return doc

    async def get_conversation(self, identity: Identity, conversation_id: str) -> Document:
        doc = await self.conversations.find_one({"_id": conversation_id, **identity.scope})
        if doc is None:
            raise NotFound(f"No conversation {conversation_id!r}")
        return doc

    async def list_conversations(
        self, identity: Identity, where: ListFilter, *, limit: int, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        """Pinned first, then most recently active; `cursor` is the `next_cursor` of the last
        page (see `shelves.py`)."""
        return await list_page(self.conversations, identity, where, limit=limit, cursor=cursor)

    async def projects(self, identity: Identity, *, archived: bool) -> list[dict[str, Any]]:
        return await count_projects(self.conversations, identity, archived=archived)

    async def tags(self, identity: Identity, *, archived: bool) -> list[dict[str, Any]]:
        return await count_tags(self.conversations, identity, archived=archived)

    async def update_conversation(
        self, identity: Identity, conversation_id: str, changes: Document
    ) -> Document:
        if not changes:  # an empty PATCH is no activity: the list order stays
            return await self.get_conversation(identity, conversation_id)
        moment = now()
        # Filing it (a project, a pin, tags) is not activity: its place in the list stays.
        activity = {"updated_at": moment} if changes.keys() - ORGANISING else {}
        doc = await self.conversations.find_one_and_update(
            {"_id": conversation_id, **identity.scope},
            stamped({"$set": {**changes, **activity}}, moment),
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise NotFound(f"No conversation {conversation_id!r}")
        return doc

    async def set_title(self, conversation_id: str, title: str, *, only_if: str) -> Document | None:
        """Replace a provisional title, unless the user renamed it meanwhile; the conversation
        as changed, None when it was not (renamed, or deleted)."""
        return await self.conversations.find_one_and_update(
            {"_id": conversation_id, "title": only_if},
            stamped({"$set": {"title": title}}, now()),
            return_document=ReturnDocument.AFTER,
        )

    async def delete_conversation(self, identity: Identity, conversation_id: str) -> Document:
        """Delete it with its messages and turns; the tombstone it leaves for the change feed.

        The tombstone is written first: a deletion that failed half-way is still told
        to other devices (and done when the client asks again), never a deletion they
        miss."""
        await self.get_conversation(identity, conversation_id)  # another's is not found
        grave = tombstone(identity, conversation_id, now())
        await self.tombstones.update_one(
            {"_id": conversation_id},
            {"$set": {k: v for k, v in grave.items() if k != "_id"}},
            upsert=True,
        )
        result = await self.conversations.delete_one({"_id": conversation_id, **identity.scope})
        if result.deleted_count == 0:
            raise NotFound(f"No conversation {conversation_id!r}")
        await self.messages.delete_many({"conversation_id": conversation_id})
        await self.db["turns"].delete_many({"conversation_id": conversation_id})
        # Its share links die with it: a deleted conversation is not readable anywhere.
        await self.db["shares"].delete_many({**identity.scope, "conversation_id": conversation_id})
        return grave

    # Messages

    async def list_messages(
        self,
        identity: Identity,
        conversation_id: str,
        *,
        limit: int,
        before: int | None,
        leaf: str | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of one branch, oldest first within the page, each message with its
        `siblings`: the current branch, or the one ending at `leaf`."""
        conversation = await linked(self.db, await self.get_conversation(identity, conversation_id))
        leaf_id = leaf if leaf is not None else conversation.get("current_leaf")
        end = None
        if leaf_id is not None:
            end = await self.tree.message_in(conversation_id, str(leaf_id), field="leaf")
        page, cursor = await self.tree.branch_page(conversation_id, end, limit=limit, before=before)
        siblings = await self.tree.siblings(conversation_id, page)
        items = [{**public_message(doc), "siblings": siblings[doc["_id"]]} for doc in page]
        return items, cursor

    async def switch_branch(
        self, identity: Identity, conversation_id: str, message_id: str
    ) -> Document:
        """Show the newest branch through `message_id` (a message of this conversation)."""
        conversation = await linked(self.db, await self.get_conversation(identity, conversation_id))
        message = await self.tree.message_in(conversation_id, message_id, field="current_leaf")
        leaf = await self.tree.newest_leaf(conversation_id, message)
        doc = await self.conversations.find_one_and_update(
            {"_id": conversation["_id"], **identity.scope},
            stamped({"$set": {"current_leaf": leaf["_id"]}}, now()),
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise NotFound(f"No conversation {conversation_id!r}")
        return doc

    async def rate(
        self, identity: Identity, message_id: str, feedback: dict[str, Any] | None
    ) -> Document:
        """Store (or with None, clear) the caller's rating of one of its answers."""
        mine = {"_id": message_id, **identity.scope}
        doc = await self.messages.find_one(mine, {"role": 1})
        if doc is None:
            raise NotFound(f"No message {message_id!r}")
        if doc.get("role") != "assistant":
            raise ValidationFailed(
                "Only answers (assistant messages) can be rated",
                [{"field": "id", "message": "must be an assistant message"}],
            )
        stored = None if feedback is None else {**feedback, "updated_at": now()}
        updated = await self.messages.find_one_and_update(
            mine, {"$set": {"feedback": stored}}, return_document=ReturnDocument.AFTER
        )
        if updated is None:  # deleted meanwhile
            raise NotFound(f"No message {message_id!r}")
        return updated

    async def get_message(self, message_id: str) -> Document | None:
        return await self.messages.find_one({"_id": message_id}, UNSEARCHED)

    async def search_messages(
        self, identity: Identity, query: str, *, limit: int, exclude_turn_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The caller's finished messages holding a word that begins with each word of
        `query` (case and accents aside), newest first.

        Served by the `search_terms` index (storage/terms.py): the cost is the
        matches', not the caller's history. Scoped like every query to the
        caller's (tenant, user): another user's words are never found.
        """
        conditions = matching(identity, query)
        if not conditions:
            return []
        found: dict[str, Any] = {**identity.scope, "$and": conditions}
        if exclude_turn_id is not None:
            found["turn_id"] = {"$ne": exclude_turn_id}
        docs = await (
            self.messages.find(found, UNSEARCHED)
            .sort([("created_at", DESCENDING), ("seq", DESCENDING)])
            .limit(limit)
            .to_list()
        )
        ids = list({doc["conversation_id"] for doc in docs})
        titles = {
            c["_id"]: c.get("title", "")
            async for c in self.conversations.find(
                {"_id": {"$in": ids}, **identity.scope}, {"title": 1}
            )
        }
        asked = words(query)
        return [
            {
                "conversation_id": doc["conversation_id"],
                "conversation_title": titles.get(doc["conversation_id"], ""),
                "message_id": doc["_id"],
                "seq": doc["seq"],
                "role": doc["role"],
                "snippet": _snippet(str(doc.get("content") or ""), asked),
                "created_at": doc["created_at"],
            }
            for doc in docs
            if doc["conversation_id"] in titles
        ]


SNIPPET_CHARS = 80


def _snippet(text: str, asked: list[str]) -> str:
    """The first word matched, with some context either side, on one line."""
    found = _first_match(text, asked)
    start = max(0, found - SNIPPET_CHARS) if found is not None else 0
    end = min(len(text), (found or 0) + SNIPPET_CHARS * 2)
    snippet = " ".join(text[start:end].split())
    return ("…" if start else "") + snippet + ("…" if end < len(text) else "")


def _first_match(text: str, asked: list[str]) -> int | None:
    """Where the first word of `text` that begins with an asked word starts."""
    for word in WORD.finditer(text):
        folded = fold(word.group())
        if any(folded.startswith(prefix) for prefix in asked):
            return word.start()
    return None
