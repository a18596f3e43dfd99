"""Request shapes, checked by pydantic: every field error names its field.

Strict types on purpose: a client sending `"archived": "yes"` has a bug we
should tell it about, not guess around.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from server.errors import MalformedJson, ValidationFailed

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Title = Annotated[str, StringConstraints(max_length=200)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
SystemPrompt = Annotated[str, StringConstraints(max_length=20_000)]
UserName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.@+-]+$")]
MAX_TAGS = 20
MAX_TAG_CHARS = 40
MAX_PROJECT_CHARS = 100


def normal_tag(tag: str) -> str:
    """One spelling per tag: trimmed, case-folded, inner whitespace one space."""
    return " ".join(tag.casefold().split())


def _normal_tags(tags: list[str]) -> list[str]:
    """Deduplicated and sorted, so two devices that tag alike store the same list."""
    normal = {normal_tag(tag) for tag in tags}
    if "" in normal:
        raise ValueError("a tag must not be empty")
    if any(len(tag) > MAX_TAG_CHARS for tag in normal):
        raise ValueError(f"each tag is at most {MAX_TAG_CHARS} characters")
    return sorted(normal)


Tags = Annotated[
    # The bound is the normalised tag's; this one only stops absurd strings early.
    list[Annotated[str, StringConstraints(max_length=10 * MAX_TAG_CHARS)]],
    Field(max_length=MAX_TAGS),
    AfterValidator(_normal_tags),
]
# Trimmed; empty (or null) means no project.
Project = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_PROJECT_CHARS)]


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Thinking(Request):
    """Extended thinking, as the Messages API names it; `budget_tokens` below MAX_OUTPUT_TOKENS."""

    type: Literal["enabled", "disabled"]
    budget_tokens: Annotated[int, Field(ge=1024)] | None = None

    @model_validator(mode="after")
    def _budget_when_enabled(self) -> Thinking:
        if self.type == "enabled" and self.budget_tokens is None:
            raise ValueError("budget_tokens is required when thinking is enabled")
        return self


class CreateConversation(Request):
    title: Title | None = None
    model: ModelName | None = None
    system_prompt: SystemPrompt | None = None
    thinking: Thinking | None = None
    project: Project | None = Field(default=None, description="Trimmed; empty or null: none")
    pinned: bool = False
    tags: Tags = Field(
        default_factory=list,
        description="Trimmed, case-folded, inner whitespace collapsed, deduplicated, sorted",
    )


class UpdateConversation(Request):
    title: Title | None = None
    archived: bool | None = None
    project: Project | None = Field(default=None, description="Trimmed; empty or null: none")
    pinned: bool | None = None
    tags: Tags | None = Field(
        default=None,
        description="Replaces the tags: normalised as on creation; `[]` removes them all",
    )
    model: ModelName | None = None
    system_prompt: SystemPrompt | None = None
    thinking: Thinking | None = None
    current_leaf: Id | None = Field(
        default=None,
        description=(
            "Switch branches: a message of this conversation; the branch shown becomes "
            "the newest one through it"
        ),
    )


class RateMessage(Request):
    """A rating of an answer, with an optional reason."""

    rating: Literal["up", "down"]
    comment: Annotated[str, StringConstraints(max_length=2_000)] | None = None


class TurnStart(Request):
    """`turn.start` without its `type`: the same body for WS and SSE."""

    turn_id: Id
    conversation_id: Id | None = None
    # The configured MAX_MESSAGE_CHARS is checked by the engine; this bound only
    # stops absurd payloads before they are copied around.
    content: Annotated[str, StringConstraints(max_length=1_000_000)] | None = Field(
        default=None,
        description="The question; required except on a regenerate; may be empty with files",
    )
    # MAX_ATTACHMENTS (20) is checked by the engine; this bound stops absurd lists.
    attachments: list[Id] = Field(
        default_factory=list,
        max_length=1000,
        description="Uploaded files (`POST /api/files`) sent with the question, in order",
    )
    model: ModelName | None = None
    thinking: Thinking | None = Field(
        default=None, description="For this turn only, instead of the conversation's setting"
    )
    parent_message_id: Id | None = Field(
        default=None,
        description=(
            "The answer the new question follows (null: it starts the conversation anew). "
            "Absent: the conversation's `current_leaf`. Edit a question by following its parent."
        ),
    )
    regenerate_message_id: Id | None = Field(
        default=None,
        description="An answer to write again: the new answer is its sibling; no `content`",
    )

    @model_validator(mode="after")
    def _one_way_to_place_it(self) -> TurnStart:
        placed = "parent_message_id" in self.model_fields_set
        if self.regenerate_message_id is not None:
            if self.content is not None or self.attachments:
                raise ValueError(
                    "a regenerate answers the same question again: omit content and attachments"
                )
            if placed:
                raise ValueError("give parent_message_id or regenerate_message_id, not both")
        elif self.content is None and not self.attachments:
            raise ValueError("content is required (except with regenerate_message_id)")
        if (placed or self.regenerate_message_id) and self.conversation_id is None:
            raise ValueError("parent_message_id and regenerate_message_id need conversation_id")
        return self

    @property
    def parent_given(self) -> bool:
        """`parent_message_id` was sent (null included): the client chose the branch."""
        return "parent_message_id" in self.model_fields_set


class TurnCancel(Request):
    turn_id: Id


class TurnResume(Request):
    turn_id: Id
    after_seq: Annotated[int, Field(ge=0)] = 0


class AuthFrame(Request):
    """The first WS frame, when the upgrade carried no `Authorization` header."""

    type: Literal["auth"]
    token: str


class DevTokenRequest(Request):
    user: UserName
    tenant: UserName | None = None


def parse_json[M: BaseModel](model: type[M], raw: bytes | str) -> M:
    """Parse and validate a JSON document, telling malformed JSON from wrong fields."""
    try:
        return model.model_validate_json(raw)
    except PydanticValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise MalformedJson("The body is not valid JSON") from None
        raise _validation_failed(error) from None


def parse_object[M: BaseModel](model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except PydanticValidationError as error:
        raise _validation_failed(error) from None


def _validation_failed(error: PydanticValidationError) -> ValidationFailed:
    details = error.errors(include_url=False)
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
        for e in details
    ]
    # By type, not message: pydantic words it differently for JSON and for Python input.
    if any(e["type"] == "model_type" and not e["loc"] for e in details):
        return ValidationFailed("The body must be a JSON object", errors)
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    return ValidationFailed(f"Invalid fields: {summary}", errors)
