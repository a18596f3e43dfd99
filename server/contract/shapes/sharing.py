"""What the export, import and share routes send (the portable document is in
`server/sharing/document.py`: the import reads the same shape the export writes)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from server.contract.shapes.base import Shape
from server.contract.shapes.blocks import ContentBlock
from server.contract.shapes.messages import MessageStatus


class ShareCreated(Shape):
    id: str = Field(description="The share's id: what `DELETE /api/shares/{id}` revokes")
    url: str = Field(
        description="The link, with its token: shown this once (only a hash is stored)"
    )
    created_at: datetime


class Share(Shape):
    id: str
    conversation_id: str
    created_at: datetime


class ShareList(Shape):
    items: list[Share] = Field(description="Newest first; the links themselves are not kept")


class SharedMessage(Shape):
    role: Literal["user", "assistant"]
    content: str
    blocks: list[ContentBlock] | None
    status: MessageStatus
    model: str | None
    created_at: datetime


class SharedConversation(Shape):
    """A share's snapshot: the branch shown when the link was made, nothing of its owner."""

    title: str
    model: str | None
    created_at: datetime = Field(description="When the link was made")
    messages: list[SharedMessage]
