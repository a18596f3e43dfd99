"""The portable conversation: one versioned JSON document, out (export) and back in (import).

The document carries the whole tree (every branch) with what each message
stores, and nothing of its owner: no tenant, no user. Importing it writes a
new conversation of the caller's, every id new (messages, turns), so the
same document can be imported twice, by its author or anyone else, without
touching what is stored. `version` grows only when a reader of the old
version would misread the new one; a document of a later version is refused
rather than half understood.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from server.contract.shapes.portable import (
    ConversationDocument,
    PortableConversation,
    PortableMessage,
)
from server.errors import MalformedJson, ValidationFailed
from server.identity import Identity
from server.schemas import parse_json
from server.storage.client import Document
from server.storage.conversations import conversation_document
from server.storage.values import new_id, now

FORMAT = "chat-service.conversation"
VERSION = 1
# A message still streaming when it was exported has no turn to finish it here.
UNFINISHED = {"streaming": "interrupted"}


CONVERSATION_FIELDS = tuple(PortableConversation.model_fields)
MESSAGE_FIELDS = tuple(PortableMessage.model_fields)


def exported(conversation: Document, messages: list[Document]) -> dict[str, Any]:
    """The document of a stored conversation and all its messages (in `seq` order)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": now(),
        "conversation": _fields(conversation, CONVERSATION_FIELDS),
        "messages": [_fields(message, MESSAGE_FIELDS) for message in messages],
    }


def _fields(doc: Document, names: tuple[str, ...]) -> dict[str, Any]:
    found = {name: doc.get(name) for name in names if name != "id"}
    if found.get("updated_at", True) is None:
        del found["updated_at"]
    return {"id": str(doc["_id"]), **found}


def read_document(body: bytes) -> ConversationDocument:
    """Parse an import: malformed JSON (400), another format or a later version (422), then
    every field; the tree itself is checked by `imported`."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedJson("The body is not valid JSON") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _invalid("format", f"must be {FORMAT!r}: a document of GET .../export?format=json")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _invalid("version", "must be a positive integer")
    if version > VERSION:
        raise _invalid(
            "version", f"is {version}: this service reads version {VERSION} documents only"
        )
    return parse_json(ConversationDocument, body)


def imported(
    identity: Identity, document: ConversationDocument, *, model: str, thinking: Document | None
) -> tuple[Document, list[Document]]:
    """The caller's new conversation and its messages, every id new, the tree checked whole
    first: an id twice, a parent or leaf outside the document, a child before its parent."""
    messages = sorted(document.messages, key=lambda m: m.seq)
    ids = [m.id for m in messages]
    if len(set(ids)) != len(ids):
        raise _invalid("messages", "hold the same id twice")
    if len({m.seq for m in messages}) != len(messages):
        raise _invalid("messages", "hold the same seq twice")
    new_ids = {old: new_id() for old in ids}
    turns: dict[str, str] = {}
    placed: set[str] = set()
    ancestors: dict[str, list[str]] = {}
    source = document.conversation
    conversation = conversation_document(
        identity,
        title=source.title,
        model=model,
        system_prompt=source.system_prompt,
        thinking=thinking,
    )
    stored: list[Document] = []
    for message in messages:  # by seq: a parent, placed before, has its ancestors already
        parent = message.parent_id
        if parent is not None and parent not in placed:
            where = "outside the document" if parent not in new_ids else "after it"
            raise _invalid("messages", f"message {message.id!r} has its parent {where}")
        placed.add(message.id)
        mine = new_ids[message.id]
        ancestors[mine] = [] if parent is None else [*ancestors[new_ids[parent]], new_ids[parent]]
        turn = turns.setdefault(message.turn_id, str(uuid.uuid4()))
        stored.append(_message(identity, conversation["_id"], message, mine, turn))
        stored[-1]["parent_id"] = None if parent is None else new_ids[parent]
        stored[-1]["ancestors"] = ancestors[mine]
    leaf = source.current_leaf
    if leaf is not None and leaf not in new_ids:
        raise _invalid("conversation.current_leaf", "is not a message of the document")
    if leaf is None and stored:
        leaf = messages[-1].id
    conversation.update(
        archived=source.archived,
        project=source.project or None,
        pinned=source.pinned,
        tags=list(source.tags),
        current_leaf=None if leaf is None else new_ids[leaf],
        next_seq=messages[-1].seq + 1 if messages else 1,
        created_at=source.created_at,
    )
    return conversation, stored


def _message(
    identity: Identity,
    conversation_id: str,
    message: PortableMessage,
    message_id: str,
    turn_id: str,
) -> Document:
    fields = message.model_dump(exclude={"id", "parent_id", "turn_id"})
    fields["status"] = UNFINISHED.get(message.status, message.status)
    fields["updated_at"] = fields["updated_at"] or message.created_at
    if message.feedback is not None:
        fields["feedback"] = message.feedback.model_dump(exclude_none=True)
    return {
        "_id": message_id,
        "conversation_id": conversation_id,
        **identity.scope,
        "turn_id": turn_id,
        **fields,
    }


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field} {message}", [{"field": field, "message": message}])
