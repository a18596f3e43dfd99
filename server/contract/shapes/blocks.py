"""A message's content blocks, as Claude sent them or as a user attached them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from server.contract.shapes.base import omittable

ToolStatus = Literal["ok", "error", "timeout", "cancelled"]


class Block(BaseModel):
    """A content block as Claude sent it; fields beyond the ones named are kept as received."""

    model_config = ConfigDict(extra="allow", frozen=True)


class TextBlock(Block):
    type: Literal["text"]
    text: str
    citations: list[dict[str, Any]] | SkipJsonSchema[None] = omittable("Sources, when cited")


class ThinkingBlock(Block):
    """Extended thinking; sent back to the model byte for byte, with its signature."""

    type: Literal["thinking"]
    thinking: str
    signature: str


class RedactedThinkingBlock(Block):
    type: Literal["redacted_thinking"]
    data: str = Field(description="Encrypted thinking: not for display")


class ToolUseBlock(Block):
    """The model asks for a tool (`server_tool_use`: a tool the provider runs)."""

    type: Literal["tool_use", "server_tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(Block):
    """What the service sent back for a `tool_use`, in the next user turn."""

    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[dict[str, Any]]
    is_error: bool | SkipJsonSchema[None] = omittable("True unless the tool succeeded")
    status: ToolStatus = Field(description="How the call ended (ours, not sent to the model)")


class AttachmentBlock(Block):
    """A user's file (`POST /api/files`), by reference: its bytes at `/api/files/{file_id}`."""

    type: Literal["image", "document"]
    file_id: str
    media_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"]
    name: str = Field(description="The display name (made safe at upload)")
    width: int | SkipJsonSchema[None] = omittable("An image's width in pixels, as stored")
    height: int | SkipJsonSchema[None] = omittable("An image's height in pixels, as stored")
    pages: int | SkipJsonSchema[None] = omittable("A PDF's page count")
    url: str | SkipJsonSchema[None] = omittable(
        "In a share's snapshot only: where the link serves the file without sign-in"
        " (`/s/{token}/files/{file_id}`), as long as the link lives"
    )


class OtherBlock(Block):
    """A block type added by the provider later: keep it, show it if you know it."""

    type: str


ContentBlock = (
    TextBlock
    | ThinkingBlock
    | RedactedThinkingBlock
    | ToolUseBlock
    | ToolResultBlock
    | AttachmentBlock
    | OtherBlock
)
