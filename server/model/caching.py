"""Prompt-caching breakpoints for a chat request, where Anthropic's guidance puts them.

At most three of the API's four `cache_control` breakpoints (docs/decisions.md,
"Prompt caching"):

1. the end of the system prompt, or of the tools when there is none: the
   prefix every turn of every conversation with these settings shares
   (the API orders the prompt tools, system, messages);
2. the last block of the last user message (the last message, except when a
   paused answer is continued): this request's whole prompt is written, so
   the next turn, or the next tool round, reads it;
3. the last block of the user message before it: the previous request's
   breakpoint, so its write is found even when the turn added more than the
   API's 20-block look-back (a long tool round).

Blocks are copied, never changed in place: the context is built from stored
messages. Only user messages are marked: an assistant's blocks (thinking,
server tool results) go back exactly as the API issued them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.model.base import ContextMessage

UNMARKABLE = {"thinking", "redacted_thinking"}


def cache_control(ttl: str) -> dict[str, str]:
    return {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": ttl}


def cached_system(system: str | None, ttl: str) -> list[dict[str, Any]] | None:
    if not system:
        return None
    return [{"type": "text", "text": system, "cache_control": cache_control(ttl)}]


def cached_tools(tools: Sequence[dict[str, Any]], ttl: str) -> list[dict[str, Any]]:
    """The tools with the last one marked: used when there is no system prompt to mark."""
    marked = list(tools)
    if marked:
        marked[-1] = {**marked[-1], "cache_control": cache_control(ttl)}
    return marked


def cached_messages(messages: Sequence[ContextMessage], ttl: str) -> list[ContextMessage]:
    """The messages with the last two user messages marked at their ends."""
    marked = list(messages)
    for index in [i for i, m in enumerate(marked) if m.get("role") == "user"][-2:]:
        marked[index] = _marked(marked[index], ttl)
    return marked


def _marked(message: ContextMessage, ttl: str) -> ContextMessage:
    content = message.get("content")
    if isinstance(content, str):
        if not content:
            return message
        blocks: list[dict[str, Any]] = [{"type": "text", "text": content}]
    else:
        blocks = list(content or [])
    for index in range(len(blocks) - 1, -1, -1):
        block = blocks[index]
        if block.get("type") in UNMARKABLE or (block.get("type") == "text" and not block["text"]):
            continue
        blocks[index] = {**block, "cache_control": cache_control(ttl)}
        return {**message, "content": blocks}
    return message
