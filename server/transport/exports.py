"""Export and import: a conversation as Markdown or as the portable JSON document, all of
them as JSON Lines, and a document imported back as a new conversation."""

from __future__ import annotations

import re

import orjson
from aiohttp import web

from server.auth import identity_of
from server.codec import json_response
from server.errors import PayloadTooLarge, ValidationFailed
from server.forwarded import public_origin
from server.sharing.document import exported, imported, read_document
from server.sharing.markdown_export import conversation_markdown
from server.storage.client import Document
from server.storage.conversations import public_conversation
from server.storage.portable import Portable
from server.storage.tree import branch_of
from server.sync.changes import conversation_changed
from server.transport.rest import invalid_query, path_id
from server.turns.choices import thinking_setting
from server.typedefs import deadline_key, feed_key, settings_key, store_key

routes = web.RouteTableDef()

FORMATS = {"json": "application/json", "markdown": "text/markdown"}
EXTENSIONS = {"json": "json", "markdown": "md"}
JSON_LINES = "application/x-ndjson"
READ_CHUNK = 64 * 1024
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def portable(request: web.Request) -> Portable:
    store = request.app[store_key]
    return Portable(store.db, store)


@routes.get("/api/conversations/{id}/export")
async def export_conversation(request: web.Request) -> web.Response:
    kind = request.query.get("format") or "json"
    if kind not in FORMATS:
        raise invalid_query("format", "must be markdown or json")
    conversation, messages = await portable(request).tree(identity_of(request), path_id(request))
    if kind == "json":
        body = orjson.dumps(exported(conversation, messages))
    else:
        origin = public_origin(request, request.app[settings_key].trusted_proxies)
        branch = _current_branch(conversation, messages)
        body = conversation_markdown(conversation, branch, f"{origin}/api/files/").encode()
    name = f"{_file_name(str(conversation.get('title') or ''))}.{EXTENSIONS[kind]}"
    return web.Response(
        body=body,
        content_type=FORMATS[kind],
        charset="utf-8" if kind == "markdown" else None,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@routes.get("/api/export")
async def export_everything(request: web.Request) -> web.StreamResponse:
    """All the caller's conversations, one document a line, written as they are read."""
    identity = identity_of(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": JSON_LINES,
            "Content-Disposition": 'attachment; filename="conversations.jsonl"',
        }
    )
    await response.prepare(request)
    async for conversation, messages in portable(request).every_tree(identity):
        await response.write(orjson.dumps(exported(conversation, messages)) + b"\n")
    await response.write_eof()
    return response


@routes.post("/api/conversations/import")
async def import_conversation(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    document = read_document(await read_limited(request, settings.import_max_bytes))
    # The conversation's settings must let the next turn run here: a model this service
    # does not offer becomes its default, a thinking budget it cannot give is turned off.
    model = document.conversation.model
    if model not in settings.models:
        model = settings.default_model
    try:
        thinking = thinking_setting(settings, document.conversation.thinking)
    except ValidationFailed:
        thinking = None
    identity = identity_of(request)
    conversation, messages = imported(identity, document, model=model, thinking=thinking)
    async with request.app[deadline_key]():
        await portable(request).insert(conversation, messages)
    request.app[feed_key].publish(conversation_changed(identity, conversation))
    return json_response(public_conversation(conversation), status=201)


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes `limit` bytes: by its declared length
    before reading any of it, else while it streams in, never after buffering it all.
    Read from the stream itself, so the app's smaller `client_max_size` does not apply."""
    too_large = PayloadTooLarge(f"The document is larger than the {limit} byte import limit")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _current_branch(conversation: Document, messages: list[Document]) -> list[Document]:
    by_id = {str(m["_id"]): m for m in messages}
    leaf = by_id.get(str(conversation.get("current_leaf")))
    return [] if leaf is None else [by_id[i] for i in branch_of(leaf) if i in by_id]


def _file_name(title: str) -> str:
    return UNSAFE_NAME.sub("-", title).strip("-.")[:60] or "conversation"
