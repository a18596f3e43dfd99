"""What the model sees of a conversation: its history within a token budget.

A message's tokens are the provider's count where one is stored (`tokens`,
counted once after its turn: `turns/counting.py`), else estimated (about four
characters a token, plus a little per message): the estimate costs nothing,
works offline, and errs on the generous side for English text. The budget is
a setting (CONTEXT_TOKEN_BUDGET) so operators can leave headroom.

An answer that used tools is stored as ONE assistant message whose blocks
hold the whole sequence (thinking, text, `tool_use`, the `tool_result`s the
service sent back, more text); `answer_messages` splits it into the
assistant/user alternation the Messages API requires, blocks unmodified
(thinking with its signature), every `tool_use` followed by its result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from server.errors import InputTooLong
from server.files.blocks import attachments_tokens, is_reference
from server.model.base import ContextMessage
from server.storage.client import Document

PER_MESSAGE_TOKENS = 4
# Our own bookkeeping on stored blocks, never sent to the API.
PRIVATE_FIELDS = {"tool_result": ("status",), "tool_use": ("input_error",)}
UNANSWERED = "The tool did not run: the answer was interrupted."


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4 + PER_MESSAGE_TOKENS


def check_fits(
    content: str, system_prompt: str | None, budget: int, attachments: Sequence[Document] = ()
) -> None:
    """Refuse, before anything is stored, a message that alone exceeds the budget."""
    needed = estimate_tokens(content) + (estimate_tokens(system_prompt) if system_prompt else 0)
    needed += attachments_tokens(attachments)
    if needed > budget:
        raise InputTooLong(
            f"The message is about {needed} tokens; this service accepts at most {budget} "
            "per request. Shorten it or split it up."
        )


def build_context(
    history: Sequence[Document],
    content: str,
    system_prompt: str | None,
    budget: int,
    attachments: Sequence[Document] = (),
) -> list[ContextMessage]:
    """The newest history that fits, oldest dropped first, ending with `content`.

    A question whose answer has nothing (failed or stopped before the first
    token) is left out with it: the user either retries it, which would send
    it twice, or moves on. Same-role neighbours that remain are merged, so the
    roles alternate as the Messages API requires. Files (references) count at
    their own estimate, and a question is dropped with its files, never apart.
    """
    check_fits(content, system_prompt, budget, attachments)
    remaining = budget - estimate_tokens(content) - attachments_tokens(attachments)
    if system_prompt:
        remaining -= estimate_tokens(system_prompt)
    kept: list[list[ContextMessage]] = []
    for doc in reversed(_answered(history)):
        messages = messages_of(doc)
        if not messages:
            continue
        counted = doc.get("tokens")  # the provider's count, once made (`turns/counting.py`)
        cost = counted if isinstance(counted, int) else sum(_estimate(m) for m in messages)
        if cost > remaining:
            break
        remaining -= cost
        kept.append(messages)
    flat = [message for messages in reversed(kept) for message in messages]
    flat.append({"role": "user", "content": _question(content, attachments)})
    return _alternate(flat)


def answer_messages(blocks: Sequence[Document]) -> list[ContextMessage]:
    """One stored answer's blocks as API messages: assistant blocks, then user tool results."""
    messages: list[ContextMessage] = []
    pending: list[str] = []  # tool_use ids still waiting for their result
    for stored in blocks:
        block = _for_api(stored)
        if block is None:
            continue
        role = "user" if block["type"] == "tool_result" else "assistant"
        if role == "assistant" and pending and messages[-1]["role"] == "user":
            messages[-1]["content"].extend(_unanswered(pending))  # results that never came
            pending = []
        if block["type"] == "tool_use":
            pending.append(str(block["id"]))
        elif block["type"] == "tool_result" and block.get("tool_use_id") in pending:
            pending.remove(block["tool_use_id"])
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].append(block)
        else:
            messages.append({"role": role, "content": [block]})
    if pending:
        if messages[-1]["role"] == "user":
            messages[-1]["content"].extend(_unanswered(pending))
        else:
            messages.append({"role": "user", "content": _unanswered(pending)})
    return messages


def _for_api(block: Document) -> Document | None:
    """A stored block as the API takes it back; None for one it cannot take."""
    kind = block.get("type")
    if kind == "text" and not block.get("text"):
        return None  # the API refuses empty text blocks
    if kind == "thinking" and not block.get("signature"):
        return None  # cut off before its signature: unverifiable, so unusable
    private = PRIVATE_FIELDS.get(str(kind))
    if private and any(name in block for name in private):
        return {key: value for key, value in block.items() if key not in private}
    return block


def _plain(block: Document) -> bool:
    return block.get("type") == "text" and block.keys() <= {"type", "text"}


def _unanswered(ids: list[str]) -> list[Document]:
    return [
        {"type": "tool_result", "tool_use_id": i, "content": UNANSWERED, "is_error": True}
        for i in ids
    ]


def messages_of(doc: Document) -> list[ContextMessage]:
    """A stored message as API messages; an answer of plain text only, as a string (as before)."""
    blocks = doc.get("blocks")
    if doc["role"] == "assistant" and blocks and not all(_plain(block) for block in blocks):
        return answer_messages(blocks)
    text = str(doc.get("content") or "")
    if doc["role"] == "user" and blocks and any(is_reference(block) for block in blocks):
        return [{"role": "user", "content": _question(text, blocks)}]
    return [{"role": str(doc["role"]), "content": text}] if text.strip() else []


def _question(text: str, attachments: Sequence[Document]) -> str | list[Document]:
    """A user's words after its files (Anthropic: images and documents before the question)."""
    if not attachments:
        return text
    blocks = [dict(block) for block in attachments]
    return blocks + ([{"type": "text", "text": text}] if text.strip() else [])


def _estimate(message: ContextMessage) -> int:
    content = message["content"]
    if isinstance(content, str):
        return estimate_tokens(content)
    others = [block for block in content if not is_reference(block)]
    return estimate_tokens(orjson.dumps(others).decode()) + attachments_tokens(content)


def _has_answer(doc: Document) -> bool:
    if str(doc.get("content") or "").strip():
        return True
    return any(_for_api(block) is not None for block in doc.get("blocks") or ())


def _answered(history: Sequence[Document]) -> list[Document]:
    answered: list[Document] = []
    for doc in history:
        if doc["role"] == "assistant" and not _has_answer(doc):
            if answered and answered[-1]["role"] == "user":
                answered.pop()
            continue
        answered.append(doc)
    return answered


def _alternate(messages: list[ContextMessage]) -> list[ContextMessage]:
    # The first message must be a user's own words, not results of a dropped tool_use.
    while messages and (messages[0]["role"] != "user" or _has_results(messages[0])):
        messages = messages[1:]
    merged: list[ContextMessage] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1] = {
                "role": message["role"],
                "content": _join(merged[-1]["content"], message["content"]),
            }
        else:
            merged.append(dict(message))
    return merged


def _has_results(message: ContextMessage) -> bool:
    content = message["content"]
    return not isinstance(content, str) and any(b.get("type") == "tool_result" for b in content)


def _join(first: Any, second: Any) -> Any:
    if isinstance(first, str) and isinstance(second, str):
        return first + "\n\n" + second
    return _as_blocks(first) + _as_blocks(second)


def _as_blocks(content: Any) -> list[Document]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content)
