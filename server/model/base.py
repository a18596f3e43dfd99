"""What every model streams: `Chunk`s through one interface, so the turn engine has one path."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from server.prices import USAGE_FIELDS


@dataclass(frozen=True, slots=True)
class TextChunk:
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingChunk:
    """A piece of the model's extended thinking, relayed as it comes."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A `tool_use` block that has stopped: its input is complete and parsed.

    `input_error` holds the raw input when it was not a JSON object; the tool
    loop answers such a call with an `is_error` result instead of running it.
    """

    id: str
    name: str
    input: dict[str, Any]
    input_error: str | None = None
    server: bool = False  # an Anthropic server tool: run by the provider, not by us


@dataclass(frozen=True, slots=True)
class ServerToolResult:
    """A server tool's result block (`web_search_tool_result`, ...), whole, as received.

    The provider ran the tool; the service relays and stores the block, never runs anything.
    """

    block: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Citation:
    """A `citations_delta`: a source for the text block at `index` of this message."""

    index: int
    citation: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Billed:
    """A request's usage as its start reports it (input and cache: billed whatever follows)."""

    usage: dict[str, int]


@dataclass(frozen=True, slots=True)
class Finished:
    input_tokens: int
    output_tokens: int
    stop_reason: str | None
    # The message's content blocks as received (text, thinking, tool_use, ...).
    content: tuple[dict[str, Any], ...] = ()
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    web_search_requests: int = 0  # `usage.server_tool_use`: billed apart from tokens

    def usage(self) -> dict[str, int]:
        """What the request was billed for, every field a number (0 where the API said none)."""
        return {name: getattr(self, name) for name in USAGE_FIELDS}


Chunk = TextChunk | ThinkingChunk | ToolCall | ServerToolResult | Citation | Billed | Finished
# `content` is a string (plain text) or a list of content blocks.
ContextMessage = dict[str, Any]


class Model(Protocol):
    def stream(
        self,
        *,
        model: str,
        system: str | None,
        messages: Sequence[ContextMessage],
        max_tokens: int,
        tools: Sequence[dict[str, Any]] = (),
        thinking_budget: int | None = None,
    ) -> AsyncGenerator[Chunk]: ...

    async def title(self, question: str, answer: str) -> str: ...

    async def count_tokens(
        self, *, model: str, messages: Sequence[ContextMessage], tools: Sequence[dict[str, Any]]
    ) -> int | None: ...

    async def close(self) -> None: ...


def estimate_words(text: str) -> int:
    return len(text.split())


def clean_title(raw: str) -> str:
    title = " ".join(raw.strip().strip("\"'").split())
    return title.rstrip(".!?:;,")[:80] or "Untitled"
