"""WebSocket frames both ways, and the turn events SSE carries as its `data`.

Client frames are the request models the server validates with, plus their
`type`. Server frames describe what `events.TurnEvent.to_wire` and the WS
transport send.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from server.contract.shapes.base import Shape, omittable
from server.contract.shapes.blocks import ToolStatus
from server.contract.shapes.conversations import Conversation
from server.contract.shapes.errors import ErrorCode, ErrorInfo, FieldError
from server.contract.shapes.messages import Message
from server.contract.shapes.sync import Cursor
from server.contract.shapes.turns import RunningTurn
from server.contract.shapes.usage import Usage
from server.schemas import AuthFrame, Request, TurnCancel, TurnResume, TurnStart

# Client to server


class TurnStartFrame(TurnStart):
    """Start a turn; without `conversation_id`, in a new conversation."""

    type: Literal["turn.start"]


class TurnCancelFrame(TurnCancel):
    """Stop a running turn at once, keeping its partial answer."""

    type: Literal["turn.cancel"]


class TurnResumeFrame(TurnResume):
    """Re-attach to a turn: the events after `after_seq`, then the live ones."""

    type: Literal["turn.resume"]


class PingFrame(Request):
    type: Literal["ping"]


# Server to client


class ReadyFrame(Shape):
    """The connection is authenticated; changes made elsewhere are pushed from now on."""

    type: Literal["ready"]
    user_id: str
    tenant_id: str
    cursor: str = Field(
        description="The change feed's cursor as of now: a client with no cursor of its own "
        "keeps it, and after a reconnect syncs from the one it had"
    )


class PongFrame(Shape):
    type: Literal["pong"]


class ErrorFrame(Shape):
    """A frame that could not be acted on; the connection stays open (except `unauthorized`)."""

    type: Literal["error"]
    code: ErrorCode
    message: str
    turn_id: str | SkipJsonSchema[None] = omittable("The `turn_id` of the refused frame, if any")
    errors: list[FieldError] | SkipJsonSchema[None] = omittable("The fields at fault")
    retry_after: float | SkipJsonSchema[None] = omittable(
        "Seconds to wait before trying again (the limits: `rate_limited`, `too_many_turns`, "
        "`too_many_connections`, `budget_exhausted`)"
    )


class TurnFrame(Shape):
    turn_id: str
    seq: int = Field(ge=1, description="Increasing per turn; may skip numbers (merged deltas)")


class TurnStartedFrame(TurnFrame):
    type: Literal["turn.started"]
    seq: Literal[1] = Field(description="A turn's first event")
    conversation_id: str
    user_message_id: str = Field(description="The question (an existing one on a regenerate)")
    assistant_message_id: str
    parent_message_id: str | None = Field(description="The question's parent; null: a root")
    regenerate_message_id: str | None = Field(
        description="On a regenerate, the answer this one is a new sibling of; else null"
    )
    model: str


class TurnDeltaFrame(TurnFrame):
    """More text: append it."""

    type: Literal["turn.delta"]
    text: str


class TurnThinkingFrame(TurnFrame):
    """More of the model's extended thinking: append it to the thinking shown."""

    type: Literal["turn.thinking"]
    text: str


SERVER_TOOL = (
    "True for a tool the model provider runs itself (`web_search`, `web_fetch`); absent otherwise"
)


class TurnToolCallFrame(TurnFrame):
    """The model asks for a tool; its input is complete."""

    type: Literal["turn.tool_call"]
    id: str = Field(description="The `tool_use` id; its `turn.tool_result` carries the same")
    name: str
    input: dict[str, Any]
    server: bool | SkipJsonSchema[None] = omittable(SERVER_TOOL)


class TurnToolResultFrame(TurnFrame):
    """A tool call ended; the result goes back to the model, which goes on."""

    type: Literal["turn.tool_result"]
    id: str
    name: str
    status: ToolStatus
    preview: str = Field(description="The start of the result, for display")
    server: bool | SkipJsonSchema[None] = omittable(SERVER_TOOL)


class CitedSource(Shape):
    """Where a piece of the answer comes from, as the model cited it."""

    type: str = Field(description="`web_search_result_location`, `char_location`, ...")
    url: str | SkipJsonSchema[None] = omittable("The cited page (web search and fetch)")
    title: str | SkipJsonSchema[None] | None = omittable("The page's or document's title")
    cited_text: str | SkipJsonSchema[None] = omittable("The passage cited")
    document_index: int | SkipJsonSchema[None] = omittable(
        "Into an attachment: which document of the request (0-based)"
    )
    document_title: str | SkipJsonSchema[None] | None = omittable("The attachment's name")
    start_page_number: int | SkipJsonSchema[None] = omittable(
        "`page_location`: first page, 1-based"
    )
    end_page_number: int | SkipJsonSchema[None] = omittable("`page_location`: page after the last")
    start_char_index: int | SkipJsonSchema[None] = omittable("`char_location`: first character")
    end_char_index: int | SkipJsonSchema[None] = omittable("`char_location`: after the last")


class TurnCitationFrame(TurnFrame):
    """A source for the text that follows: it belongs to the answer's block `block`."""

    type: Literal["turn.citation"]
    block: int = Field(ge=0, description="The cited text block's index in `message.blocks`")
    citation: CitedSource


class TurnDoneFrame(TurnFrame):
    type: Literal["turn.done"]
    message: Message
    usage: Usage
    stop_reason: str | None


class TurnCancelledFrame(TurnFrame):
    type: Literal["turn.cancelled"]
    message: Message = Field(description="The partial answer, saved")


class TurnErrorFrame(TurnFrame, ErrorInfo):
    type: Literal["turn.error"]
    partial: Message | None = Field(description="The saved answer, when it has text")


class TurnSnapshotFrame(TurnFrame):
    """The whole text so far, standing in for events no longer held: replace, don't append."""

    type: Literal["turn.snapshot"]
    seq: int = Field(ge=0, description="The last event it stands in for")
    message: Message


# Server to client: changes made on the user's other devices (the change feed)


class ConversationChangedFrame(Shape):
    """A conversation was created or changed elsewhere (a title, an archive, a new answer)."""

    type: Literal["conversation.changed"]
    conversation: Conversation = Field(description="Whole, as it is now: replace yours")
    cursor: str = Cursor


class ConversationDeletedFrame(Shape):
    """A conversation was deleted elsewhere."""

    type: Literal["conversation.deleted"]
    conversation_id: str
    cursor: str = Cursor


class TurnRunningFrame(Shape):
    """A turn started elsewhere: `turn.resume` it to follow it live."""

    type: Literal["turn.running"]
    turn: RunningTurn
    cursor: str = Cursor


CLIENT_FRAMES: tuple[type[Request], ...] = (
    AuthFrame,
    TurnStartFrame,
    TurnCancelFrame,
    TurnResumeFrame,
    PingFrame,
)
TURN_EVENTS: tuple[type[Shape], ...] = (
    TurnStartedFrame,
    TurnDeltaFrame,
    TurnThinkingFrame,
    TurnToolCallFrame,
    TurnToolResultFrame,
    TurnCitationFrame,
    TurnDoneFrame,
    TurnCancelledFrame,
    TurnErrorFrame,
    TurnSnapshotFrame,
)
CHANGE_FRAMES: tuple[type[Shape], ...] = (
    ConversationChangedFrame,
    ConversationDeletedFrame,
    TurnRunningFrame,
)
SERVER_FRAMES: tuple[type[Shape], ...] = (
    ReadyFrame,
    PongFrame,
    ErrorFrame,
    *TURN_EVENTS,
    *CHANGE_FRAMES,
)
