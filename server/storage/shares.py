"""Share links: a snapshot of one branch, found by the hash of an unguessable token.

Only the token's SHA-256 is stored. The token carries 256 random bits, so a
fast hash is enough (nothing to brute-force), and a database that leaks does
not leak working links. Every lookup, of a live, revoked or made-up token, is
the same work: hash it, then one lookup on the unique `token_hash` index.
Revoking deletes the document, so every process answers 404 at once: there
is no cache of shares anywhere.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from server.errors import NotFound
from server.identity import Identity
from server.storage.client import Document
from server.storage.conversations import Store
from server.storage.inserts import insert_new
from server.storage.migrations import linked
from server.storage.tree import branch_of
from server.storage.values import new_id, now

TOKEN_BYTES = 32  # 256 bits
SNAPSHOT_FIELDS = ("role", "content", "blocks", "status", "model", "created_at")
MAX_SHARES_LISTED = 100


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def public_share(doc: Document) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "conversation_id": doc["conversation_id"],
        "created_at": doc["created_at"],
    }


def public_snapshot(share: Document) -> dict[str, Any]:
    """A share's snapshot as `GET /api/shares/{token}` sends it: nothing of its owner
    (`sharing/reading.py` adds each attachment's address under the link)."""
    return {
        "title": share.get("title", ""),
        "model": share.get("model"),
        "created_at": share["created_at"],
        "messages": share.get("messages", []),
    }


class Shares:
    def __init__(self, db: AsyncDatabase[Document], store: Store) -> None:
        self.db = db
        self.store = store
        self.shares = db["shares"]

    async def create(self, identity: Identity, conversation_id: str) -> tuple[Document, str]:
        """Snapshot the conversation's current branch; the share and its token (shown once)."""
        conversation = await linked(
            self.db, await self.store.get_conversation(identity, conversation_id)
        )
        messages: list[Document] = []
        leaf_id = conversation.get("current_leaf")
        if leaf_id is not None:
            leaf = await self.store.tree.message_in(conversation_id, str(leaf_id), field="leaf")
            messages = await self.store.tree.by_ids(branch_of(leaf))
        token = secrets.token_urlsafe(TOKEN_BYTES)
        share = {
            "_id": new_id(),
            "token_hash": token_hash(token),
            **identity.scope,
            "conversation_id": conversation_id,
            "created_at": now(),
            "title": conversation.get("title", ""),
            "model": conversation.get("model"),
            "messages": [{name: m.get(name) for name in SNAPSHOT_FIELDS} for m in messages],
        }
        await insert_new(self.shares, [share])
        return share, token

    async def by_token(self, token: str) -> Document:
        found = await self.shares.find_one({"token_hash": token_hash(token)})
        if found is None:
            raise NotFound("No such share link (it may have been revoked)")
        return found

    async def of_conversation(self, identity: Identity, conversation_id: str) -> list[Document]:
        await self.store.get_conversation(identity, conversation_id)  # another's is not found
        found = self.shares.find(
            {**identity.scope, "conversation_id": conversation_id}, {"messages": 0}
        )
        return await found.sort("created_at", DESCENDING).limit(MAX_SHARES_LISTED).to_list()

    async def revoke(self, identity: Identity, share_id: str) -> None:
        result = await self.shares.delete_one({"_id": share_id, **identity.scope})
        if result.deleted_count == 0:
            raise NotFound(f"No share {share_id!r}")
