"""What the server sends over REST, and the parts frames share (messages, errors).

These models describe; the server builds the same shapes as plain dicts
(cheaper on the per-token path) and the tests check the two agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import SkipJsonSchema

from server.errors import HTTP_ERROR_CODES, DomainError


class Shape(BaseModel):
    """An outgoing object: exactly these fields, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable(description: str) -> Any:
    """A field that is left out when it does not apply, and never null."""
    return Field(default=None, description=description, json_schema_extra=_without_default)


def _codes(cls: type[DomainError]) -> set[str]:
    found = {cls.code}
    for sub in cls.__subclasses__():
        found |= _codes(sub)
    return found


# `error` is the abstract base's placeholder; no raised error carries it.
ERROR_CODES = sorted(_codes(DomainError) - {"error"})


class ErrorCode(RootModel[str]):
    """A stable error code that clients branch on (see docs/protocol.md)."""

    model_config = ConfigDict(json_schema_extra={"enum": [*ERROR_CODES]})


class ProblemCode(RootModel[str]):
    """A domain error's code, a generic HTTP error's, or `http_<status>` for any other."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"enum": [*sorted(set(ERROR_CODES) | set(HTTP_ERROR_CODES.values()))]},
                {"pattern": "^http_[1-5][0-9]{2}$"},
            ]
        }
    )


class FieldError(Shape):
    field: str = Field(description="The field (dotted path), query parameter or header at fault")
    message: str


class Usage(Shape):
    """Tokens by how they are billed, summed over a turn's rounds, and what they cost.

    `input_tokens` is only the prompt after the last cache breakpoint: the whole
    prompt is the sum of the three input fields."""

    input_tokens: int = Field(ge=0, description="Prompt tokens billed at the input price")
    output_tokens: int = Field(ge=0)
    cache_creation_input_tokens: int = Field(
        ge=0, description="Prompt tokens written to the prompt cache (1.25 x input; 2 x for 1h)"
    )
    cache_read_input_tokens: int = Field(
        ge=0, description="Prompt tokens read from the prompt cache (0.1 x input)"
    )
    web_search_requests: int = Field(ge=0, description="Server-side web searches, billed apart")
    cost_usd: float = Field(ge=0, description="At the deployment's prices (`PRICES_FILE`)")


class ErrorInfo(Shape):
    """Why an answer failed or stopped: stored on the message, carried by `turn.error`."""

    code: ErrorCode
    message: str
    retryable: bool
    retry_after: float | SkipJsonSchema[None] = omittable(
        "Seconds to wait, when the model provider said so (`rate_limited`)"
    )


MessageStatus = Literal["complete", "streaming", "cancelled", "interrupted", "error"]
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


class Problem(Shape):
    """`application/problem+json` (RFC 9457), with a stable `code`."""

    type: str = Field(description="`about:blank#<code>`")
    title: str
    status: int
    detail: str
    code: ProblemCode
    errors: list[FieldError] | SkipJsonSchema[None] = omittable("The fields at fault (422)")
    retry_after: float | SkipJsonSchema[None] = omittable(
        "Seconds to wait; also sent as the `Retry-After` header"
    )


class Health(Shape):
    status: Literal["ok"]
    pid: int = Field(description="The process that answered (one of the WEB_CONCURRENCY workers).")


class Budget(Shape):
    """The daily output-token budget (`OUTPUT_TOKENS_PER_DAY`), counted in UTC days."""

    output_tokens_per_day: int = Field(ge=1)
    output_tokens_used: int = Field(ge=0, description="By answers begun today that have ended")
    output_tokens_remaining: int = Field(ge=0, description="0: new turns get `budget_exhausted`")
    resets_at: datetime = Field(description="The next midnight UTC")


class CostBudget(Shape):
    """The daily cost budget (`COST_PER_USER_PER_DAY_USD`), counted in UTC days."""

    cost_usd_per_day: float = Field(gt=0)
    cost_usd_used: float = Field(ge=0, description="By answers begun today that have ended")
    cost_usd_remaining: float = Field(ge=0, description="0: new turns get `budget_exhausted`")
    resets_at: datetime = Field(description="The next midnight UTC")


class Me(Shape):
    user_id: str
    tenant_id: str
    budget: Budget | SkipJsonSchema[None] = omittable(
        "Only when the operator set a daily budget (`OUTPUT_TOKENS_PER_DAY`)"
    )
    cost_budget: CostBudget | SkipJsonSchema[None] = omittable(
        "Only when the operator set a daily cost budget (`COST_PER_USER_PER_DAY_USD`)"
    )


class Models(Shape):
    models: list[str] = Field(description="The allowlist")
    default: str


class DevToken(Shape):
    token: str = Field(description="A JWT to send as `Authorization: Bearer <token>`")
    user_id: str
    tenant_id: str


TurnState = Literal["running", "complete", "cancelled", "interrupted", "error"]


class TurnStatus(Shape):
    turn_id: str
    status: TurnState
    conversation_id: str
    assistant_message_id: str


class RunningTurn(Shape):
    """A turn running now, in whichever process: resume it to follow it live."""

    turn_id: str
    conversation_id: str
    started_at: datetime
    last_seq: int = Field(
        ge=1,
        description=(
            "The `seq` of its latest event as far as known (exact in the process running it "
            "or with Redis; else as of its last checkpoint). Resume with `after_seq: 0` to "
            "get it all"
        ),
    )


class RunningTurns(Shape):
    items: list[RunningTurn] = Field(description="Oldest first")


Cursor = Field(description="Opaque; pass as `since` to `GET /api/sync` for what changed after this")


class SyncPage(Shape):
    """What changed since a cursor: enough to bring a client's copy up to date in one request."""

    conversations: list[Conversation] = Field(
        description="Created or changed since the cursor (all of them without `since`), whole. "
        "Apply them, then `deleted`"
    )
    deleted: list[str] = Field(description="Ids of conversations deleted since the cursor")
    running_turns: list[RunningTurn] = Field(description="Every turn running now")
    cursor: str = Cursor


ToolSource = Annotated[
    str,
    Field(
        pattern=r"^(builtin|module|anthropic|mcp:.+)$",
        description="`builtin`, `module` (the operator's CHAT_TOOLS), `mcp:<server>`, or "
        "`anthropic` (run by the model provider: web search, web fetch)",
    ),
]


class ToolInfo(Shape):
    name: str = Field(description="As the model calls it; MCP tools are `<server>__<tool>`")
    description: str
    input_schema: dict[str, Any] = Field(description="A JSON Schema of the tool's input")
    source: ToolSource


class ToolList(Shape):
    tools: list[ToolInfo]


class CancelAccepted(Shape):
    turn_id: str
    status: Literal["cancelling"]


class Document(RootModel[dict[str, Any]]):
    """A JSON document (the OpenAPI or AsyncAPI description itself)."""
