"""Attachments in a conversation: stored as references, sent as base64 blocks.

A user message keeps `image`/`document` blocks that name a file (`file_id`,
`media_type`, `name`, and its size in pixels or pages, for the budget), never
its bytes. Each model request reads the bytes back and sends them whole, so
the history is as Claude first saw it and the store holds one copy of a file.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from server.errors import NotFound
from server.files.kinds import PDF, is_image
from server.files.store import FileStore
from server.identity import Identity
from server.storage.client import Document

ATTACHMENT_TYPES = ("image", "document")
# Anthropic: an image costs about width x height / 750 tokens; a PDF page, its
# text (1,500-3,000 tokens) plus the page as an image: 3,000 a page errs generous.
IMAGE_TOKENS_DIVISOR = 750
PDF_PAGE_TOKENS = 3_000


def reference(doc: Document) -> Document:
    """The block a user message stores for one of its files."""
    meta = doc["metadata"]
    block: Document = {
        "type": "image" if is_image(meta["media_type"]) else "document",
        "file_id": doc["_id"],
        "media_type": meta["media_type"],
        "name": doc["filename"],
    }
    for field in ("width", "height", "pages"):
        if meta.get(field) is not None:
            block[field] = meta[field]
    return block


def is_reference(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") in ATTACHMENT_TYPES and "file_id" in block


def reference_tokens(block: Document) -> int:
    if block.get("type") == "image":
        pixels = int(block.get("width") or 1568) * int(block.get("height") or 1568)
        return max(1, pixels // IMAGE_TOKENS_DIVISOR)
    return int(block.get("pages") or 1) * PDF_PAGE_TOKENS


def attachments_tokens(blocks: Sequence[Document]) -> int:
    return sum(reference_tokens(block) for block in blocks if is_reference(block))


async def keep_attachments(
    messages: AsyncCollection[Document], files: FileStore, turns: Sequence[Document]
) -> None:
    """Mark used the files of recovered turns' questions.

    A turn marks its files as its first step, just after its question is stored;
    a process killed between the two would leave files that a stored message
    names for the unused-file sweep. Recovery closes that gap (idempotent)."""
    ids = [turn["user_message_id"] for turn in turns if turn.get("user_message_id")]
    if not ids:
        return
    query = {"_id": {"$in": ids}, "blocks.file_id": {"$exists": True}}
    async for message in messages.find(query, {"blocks": 1, "conversation_id": 1}):
        file_ids = [str(b["file_id"]) for b in message.get("blocks") or () if is_reference(b)]
        if file_ids:
            await files.mark_used(file_ids, str(message["conversation_id"]))


async def inline_attachments(
    messages: list[dict[str, Any]], files: FileStore, identity: Identity
) -> list[dict[str, Any]]:
    """The messages with each reference replaced by its file's bytes, as the API takes them.

    A file read once per request, however often it is named. One deleted since
    (its owner's DELETE) is said so in a text block: the rest of the history stands.
    Only the caller's own files are read: a reference can arrive in an imported
    document, and must never reach another user's file; it reads as deleted."""
    read: dict[str, bytes | None] = {}
    inlined: list[dict[str, Any]] = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str) or not any(is_reference(b) for b in content):
            inlined.append(message)
            continue
        blocks = []
        for block in content:
            if not is_reference(block):
                blocks.append(block)
                continue
            file_id = str(block["file_id"])
            if file_id not in read:
                read[file_id] = await _read(files, identity, file_id)
            blocks.append(_api_block(block, read[file_id]))
        inlined.append({**message, "content": blocks})
    return inlined


async def _read(files: FileStore, identity: Identity, file_id: str) -> bytes | None:
    try:
        await files.get(identity, file_id)  # the caller's, or NotFound
        return await files.read(file_id)
    except NotFound:
        return None


def _api_block(block: Document, data: bytes | None) -> Document:
    if data is None:
        return {"type": "text", "text": f"[The attachment {block['name']!r} was deleted.]"}
    source = {
        "type": "base64",
        "media_type": block["media_type"],
        "data": base64.b64encode(data).decode("ascii"),
    }
    if block["media_type"] != PDF:
        return {"type": "image", "source": source}
    return {
        "type": "document",
        "source": source,
        "title": block["name"],
        "citations": {"enabled": True},
    }
