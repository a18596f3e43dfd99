"""What every model streams: `Chunk`s through one interface, so the turn engine has one path."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class TextChunk:
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    input_tokens: int
    output_tokens: int
    stop_reason: str | None
    # The message's content blocks as received (text, thinking, tool_use, ...).
    content: tuple[dict[str, Any], ...] = ()


Chunk = TextChunk | Finished
ContextMessage = dict[str, str]


class Model(Protocol):
    def stream(
        self, *, model: str, system: str | None, messages: Sequence[ContextMessage], max_tokens: int
    ) -> AsyncGenerator[Chunk]: ...

    async def title(self, question: str, answer: str) -> str: ...

    async def close(self) -> None: ...


def estimate_words(text: str) -> int:
    return len(text.split())


def clean_title(raw: str) -> str:
    title = " ".join(raw.strip().strip("\"'").split())
    return title.rstrip(".!?:;,")[:80] or "Untitled"
