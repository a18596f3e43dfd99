"""The portable conversation document's shape: what an export writes and an import reads.

A request's shape (exact, strict: an import refuses what it does not name) that is
also a reply's; `server/sharing/document.py` builds it and reads it back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from server.schemas import (
    Id,
    ModelName,
    Project,
    Request,
    SystemPrompt,
    Tags,
    Thinking,
    Title,
)

MAX_MESSAGES = 20_000


class PortableFeedback(Request):
    rating: Literal["up", "down"]
    comment: Annotated[str, StringConstraints(max_length=2_000)] | None = None
    updated_at: datetime | None = None


class PortableMessage(Request):
    id: Id
    parent_id: Id | None = Field(description="Another message of this document, or null: a root")
    seq: int = Field(ge=1, description="Above its parent's; unique in the document")
    role: Literal["user", "assistant"]
    content: str
    blocks: list[dict[str, Any]] | None = Field(
        default=None, description="The content blocks, exactly as stored (see Content blocks)"
    )
    status: Literal["complete", "streaming", "cancelled", "interrupted", "error"]
    turn_id: Id
    model: str | None = None
    usage: dict[str, Any] | None = None
    stop_reason: str | None = None
    error: dict[str, Any] | None = None
    feedback: PortableFeedback | None = None
    created_at: datetime
    updated_at: datetime | None = None


class PortableConversation(Request):
    id: Id
    title: Title
    model: ModelName
    system_prompt: SystemPrompt | None = None
    thinking: Thinking | None = None
    archived: bool = False
    # Optional at version 1: documents written before conversations were filed import as
    # unfiled; the normalising validators are the API's own.
    project: Project | None = None
    pinned: bool = False
    tags: Tags = Field(default_factory=list)
    current_leaf: Id | None = Field(description="A message of this document: the branch shown")
    created_at: datetime
    updated_at: datetime


class ConversationDocument(Request):
    """A conversation's whole tree: what `.../export?format=json` writes and import reads."""

    format: Literal["chat-service.conversation"]
    version: Literal[1]
    exported_at: datetime | None = None
    conversation: PortableConversation
    messages: list[PortableMessage] = Field(
        max_length=MAX_MESSAGES, description="Every message of every branch, by `seq`"
    )
