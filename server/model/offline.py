"""The offline stand-in for Claude, used when no `ANTHROPIC_API_KEY` is set."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Sequence

from server.config import Settings
from server.model.base import (
    Chunk,
    ContextMessage,
    Finished,
    TextChunk,
    clean_title,
    estimate_words,
)


class OfflineModel:
    """A deterministic stand-in for Claude when no API key is set.

    It streams word by word at a human pace through the same engine, so the
    page, cancel and resume can all be tried on a laptop with no account.
    """

    def __init__(self, settings: Settings) -> None:
        self._delay = settings.offline_word_delay_seconds

    async def stream(
        self, *, model: str, system: str | None, messages: Sequence[ContextMessage], max_tokens: int
    ) -> AsyncGenerator[Chunk]:
        question = messages[-1]["content"] if messages else ""
        reply = offline_reply(question, turns=sum(1 for m in messages if m["role"] == "user"))
        words = re.findall(r"\S+\s*", reply)[:max_tokens]
        for word in words:
            await asyncio.sleep(self._delay)
            yield TextChunk(word)
        input_tokens = sum(estimate_words(m["content"]) for m in messages)
        yield Finished(input_tokens, len(words), "end_turn")

    async def title(self, question: str, answer: str) -> str:
        return clean_title(" ".join(question.split()[:6]))

    async def close(self) -> None:
        return None


def offline_reply(question: str, *, turns: int) -> str:
    quoted = " ".join(question.split())
    if len(quoted) > 160:
        quoted = quoted[:157] + "..."
    return (
        "This is the offline model: no ANTHROPIC_API_KEY is set, so Claude is not being "
        f"called. You said: \u201c{quoted}\u201d. This conversation has {turns} "
        f"message{'s' if turns != 1 else ''} from you so far. Set ANTHROPIC_API_KEY and "
        "restart the service to talk to Claude."
    )
