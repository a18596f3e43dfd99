"""The offline stand-in for Claude, used when no `ANTHROPIC_API_KEY` is set."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from server.config import Settings
from server.files.describe import describe_attachments
from server.model.base import (
    Chunk,
    ContextMessage,
    Finished,
    TextChunk,
    ThinkingChunk,
    ToolCall,
    clean_title,
    estimate_words,
)

# What the offline model asks tools for: "search my conversations for X", "calculate 2+2".
TOOL_REQUESTS = (
    (
        re.compile(r"search (?:my |our )?(?:conversations?|messages?|history) for (.+)", re.I),
        "search_conversations",
        "query",
    ),
    (
        re.compile(r"(?:calculate|compute|what is) ([-+*/%().\d\s]*\d[-+*/%().\d\s]*)", re.I),
        "calculate",
        "expression",
    ),
)
OFFLINE_SIGNATURE = "offline-model"  # its thinking blocks' stand-in signature
RESULT_PREVIEW_CHARS = 600


class OfflineModel:
    """A deterministic stand-in for Claude when no API key is set.

    It streams word by word at a human pace through the same engine, so the
    page, cancel, resume, thinking and the tool loop can all be tried on a
    laptop with no account: it asks for a built-in tool when the message
    calls for one, then answers from the result.
    """

    def __init__(self, settings: Settings) -> None:
        self._delay = settings.offline_word_delay_seconds

    async def stream(
        self,
        *,
        model: str,
        system: str | None,
        messages: Sequence[ContextMessage],
        max_tokens: int,
        tools: Sequence[dict[str, Any]] = (),
        thinking_budget: int | None = None,
    ) -> AsyncGenerator[Chunk]:
        blocks: list[dict[str, Any]] = []
        last = messages[-1]["content"] if messages else ""
        results = _tool_results(last)
        if thinking_budget is not None and not results:
            thought = "The user wrote something; let me answer plainly and briefly."
            for word in _words(thought):
                await asyncio.sleep(self._delay)
                yield ThinkingChunk(word)
            blocks.append({"type": "thinking", "thinking": thought, "signature": OFFLINE_SIGNATURE})
        question = _text_of(last)
        call = None if results else _tool_request(question, {t["name"] for t in tools})
        if results:
            reply = "Here is what the tool returned: " + " ".join(results)[:RESULT_PREVIEW_CHARS]
        elif call is not None:
            reply = f"Let me use the {call.name} tool. "
        else:
            turns = sum(
                1 for m in messages if m["role"] == "user" and not _tool_results(m["content"])
            )
            reply = offline_reply(question, turns=turns)
            received = await asyncio.to_thread(describe_attachments, last)
            if received is not None:
                reply = f"I received {received}. {reply}"
        words = _words(reply)[:max_tokens]
        for word in words:
            await asyncio.sleep(self._delay)
            yield TextChunk(word)
        blocks.append({"type": "text", "text": "".join(words)})
        stop_reason = "end_turn"
        if call is not None:
            yield call
            blocks.append(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}
            )
            stop_reason = "tool_use"
        input_tokens = sum(estimate_words(_text_of(m["content"])) for m in messages)
        yield Finished(input_tokens, len(words), stop_reason, tuple(blocks))

    async def title(self, question: str, answer: str) -> str:
        return clean_title(" ".join(question.split()[:6]))

    async def count_tokens(
        self, *, model: str, messages: Sequence[ContextMessage], tools: Sequence[dict[str, Any]]
    ) -> int | None:
        return None  # no tokenizer offline (`Settings.token_counting`: never asked)

    async def close(self) -> None:
        return None


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


def _tool_request(question: str, offered: set[str]) -> ToolCall | None:
    for pattern, name, field in TOOL_REQUESTS:
        found = pattern.search(question)
        if found and name in offered:
            value = found.group(1).strip().rstrip("?.!").strip("\"'“”")
            return ToolCall(f"toolu_offline_{uuid.uuid4().hex[:16]}", name, {field: value})
    return None


def _tool_results(content: Any) -> list[str]:
    if isinstance(content, str):
        return []
    return [str(b.get("content", "")) for b in content if b.get("type") == "tool_result"]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(str(b.get("text", "")) for b in content if b.get("type") == "text")


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
