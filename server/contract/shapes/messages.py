"""Messages, their pages, their ratings, and search hits among them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from server.contract.shapes.base import Shape, omittable
from server.contract.shapes.blocks import ContentBlock
from server.contract.shapes.errors import ErrorInfo
from server.contract.shapes.usage import Usage

MessageStatus = Literal["complete", "streaming", "cancelled", "interrupted", "error"]


class Siblings(Shape):
    """A message among its parent's children, oldest first: enough to draw "< 2/3 >"."""

    index: int = Field(ge=0, description="This message's place in `ids`")
    count: int = Field(ge=1)
    ids: list[str] = Field(description="The parent's children in the order they were written")


class Feedback(Shape):
    rating: Literal["up", "down"]
    comment: str | SkipJsonSchema[None] = omittable("The reason given, if any")
    updated_at: datetime


class Message(Shape):
    id: str
    conversation_id: str
    seq: int = Field(
        ge=1,
        description=(
            "Unique in the conversation and increasing along every branch (a reply's seq is "
            "above its parent's): sort a branch by it. Siblings and other branches interleave"
        ),
    )
    parent_id: str | None = Field(
        description="The message this one follows; null: a first question (a root)"
    )
    role: Literal["user", "assistant"]
    content: str = Field(description="The plain text: the answer's text blocks, concatenated")
    blocks: list[ContentBlock] | None = Field(
        description="The content blocks in order, tool results included (an answer); "
        "a user's message: its attachments (`image`/`document` references), else null; "
        "null for answers stored before blocks were kept"
    )
    status: MessageStatus
    turn_id: str = Field(description="The turn that wrote this message")
    model: str
    usage: Usage | None = Field(description="Set on a complete answer; null otherwise")
    stop_reason: str | None = Field(description="The model's, on a complete answer (`end_turn`...)")
    error: ErrorInfo | None = Field(description="Why an answer failed or was interrupted")
    feedback: Feedback | None = Field(description="The owner's rating of an answer; null: none")
    created_at: datetime
    siblings: Siblings | SkipJsonSchema[None] = omittable(
        "In message lists: this message among its parent's children (edits, regenerates)"
    )


class MessagePage(Shape):
    items: list[Message] = Field(description="Oldest first within the page")
    next_cursor: int | None = Field(
        description="The `seq` to pass as `before` for the page before. Null: the first page"
    )


class MessageFeedback(Shape):
    message_id: str
    feedback: Feedback


class SearchHit(Shape):
    conversation_id: str
    conversation_title: str
    message_id: str
    seq: int = Field(ge=1)
    role: Literal["user", "assistant"]
    snippet: str = Field(description="The match with some context, on one line")
    created_at: datetime


class SearchPage(Shape):
    items: list[SearchHit] = Field(description="Newest first")
