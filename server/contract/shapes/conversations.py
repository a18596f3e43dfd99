"""Conversations, their pages, and the projects and tags they are filed under."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from server.contract.shapes.base import Shape
from server.contract.shapes.usage import Usage


class ThinkingSetting(Shape):
    type: Literal["enabled"]
    budget_tokens: int = Field(ge=1024)


class Conversation(Shape):
    id: str
    title: str = Field(description="Empty until the service or the user names it")
    model: str
    system_prompt: str | None
    thinking: ThinkingSetting | None = Field(description="Extended thinking; null: off")
    archived: bool
    project: str | None = Field(description="The project it is filed in (null: none)")
    pinned: bool = Field(description="Listed before the unpinned ones")
    tags: list[str] = Field(description="Normalised (lower case, single spaces), sorted")
    current_leaf: str | None = Field(
        description="The last message of the branch clients show (null: no messages yet)"
    )
    created_at: datetime
    updated_at: datetime = Field(
        description="Last activity; the list is ordered by it (after pins)"
    )
    usage: Usage = Field(description="Running totals of the conversation's ended answers")


class ConversationPage(Shape):
    items: list[Conversation]
    next_cursor: str | None = Field(description="Opaque; pass as `cursor`. Null: the last page")


class Label(Shape):
    """A project or a tag, with how many of the caller's conversations carry it."""

    name: str
    count: int = Field(ge=1)


class LabelList(Shape):
    items: list[Label] = Field(description="By name")
