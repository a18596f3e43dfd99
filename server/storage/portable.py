"""A conversation's whole tree, read for an export and written by an import.

An import is written so that nothing is ever half there: the messages first,
under a conversation id nobody can list yet, then the conversation itself in
one write; if a message write fails, those written are deleted again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from server.identity import Identity
from server.storage.client import Document
from server.storage.conversations import Store
from server.storage.inserts import insert_new
from server.storage.migrations import linked
from server.storage.terms import UNSEARCHED, with_terms

INSERT_SLICE = 500
# The `owner_list` index's order: a user's conversations come straight off it.
OWNER_ORDER = [
    ("archived", ASCENDING),
    ("pinned", ASCENDING),
    ("updated_at", DESCENDING),
    ("_id", DESCENDING),
]
BATCH = 20


class Portable:
    def __init__(self, db: AsyncDatabase[Document], store: Store) -> None:
        self.db = db
        self.store = store

    async def tree(
        self, identity: Identity, conversation_id: str
    ) -> tuple[Document, list[Document]]:
        """The caller's conversation (else `NotFound`) and every message, by `seq`."""
        conversation = await linked(
            self.db, await self.store.get_conversation(identity, conversation_id)
        )
        return conversation, await self._messages(str(conversation["_id"]))

    async def every_tree(
        self, identity: Identity
    ) -> AsyncIterator[tuple[Document, list[Document]]]:
        """Each of the caller's conversations with its messages, one at a time: a bulk export
        holds one conversation in memory, whatever the number stored."""
        cursor = self.store.conversations.find(identity.scope).sort(OWNER_ORDER).batch_size(BATCH)
        async for conversation in cursor:
            conversation = await linked(self.db, conversation)
            yield conversation, await self._messages(str(conversation["_id"]))

    async def insert(self, conversation: Document, messages: list[Document]) -> None:
        """Write an imported conversation whole, or leave nothing of it; its words searchable."""
        messages = [with_terms(message) for message in messages]
        try:
            for start in range(0, len(messages), INSERT_SLICE):
                await insert_new(self.store.messages, messages[start : start + INSERT_SLICE])
            await insert_new(self.store.conversations, [conversation])
        except BaseException:
            await self.store.messages.delete_many({"conversation_id": conversation["_id"]})
            raise

    async def _messages(self, conversation_id: str) -> list[Document]:
        found = self.store.messages.find({"conversation_id": conversation_id}, UNSEARCHED)
        return await found.sort("seq", ASCENDING).to_list()
