"""What the model sees of a conversation: its history within a token budget.

Token counts are estimated (about four characters a token, plus a little per
message) rather than asked of the provider: the estimate costs nothing, works
offline, and errs on the generous side for English text. The budget is a
setting (CONTEXT_TOKEN_BUDGET) so operators can leave headroom.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.errors import InputTooLong
from server.model.base import ContextMessage
from server.storage.client import Document

PER_MESSAGE_TOKENS = 4


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4 + PER_MESSAGE_TOKENS


def check_fits(content: str, system_prompt: str | None, budget: int) -> None:
    """Refuse, before anything is stored, a message that alone exceeds the budget."""
    needed = estimate_tokens(content) + (estimate_tokens(system_prompt) if system_prompt else 0)
    if needed > budget:
        raise InputTooLong(
            f"The message is about {needed} tokens; this service accepts at most {budget} "
            "per request. Shorten it or split it up."
        )


def build_context(
    history: Sequence[Document], content: str, system_prompt: str | None, budget: int
) -> list[ContextMessage]:
    """The newest history that fits, oldest dropped first, ending with `content`.

    A question whose answer has no text (failed or stopped before the first
    token) is left out with it: the user either retries it, which would send it
    twice, or moves on. Same-role neighbours that remain are merged, so the
    roles alternate as the Messages API requires.
    """
    check_fits(content, system_prompt, budget)
    remaining = budget - estimate_tokens(content)
    if system_prompt:
        remaining -= estimate_tokens(system_prompt)
    kept: list[ContextMessage] = []
    for doc in reversed(_answered(history)):
        text = str(doc.get("content") or "")
        if not text.strip():
            continue
        cost = estimate_tokens(text)
        if cost > remaining:
            break
        remaining -= cost
        kept.append({"role": str(doc["role"]), "content": text})
    kept.reverse()
    kept.append({"role": "user", "content": content})
    return _alternate(kept)


def _answered(history: Sequence[Document]) -> list[Document]:
    answered: list[Document] = []
    for doc in history:
        if doc["role"] == "assistant" and not str(doc.get("content") or "").strip():
            if answered and answered[-1]["role"] == "user":
                answered.pop()
            continue
        answered.append(doc)
    return answered


def _alternate(messages: list[ContextMessage]) -> list[ContextMessage]:
    while messages and messages[0]["role"] != "user":
        messages = messages[1:]
    merged: list[ContextMessage] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1] = {
                "role": message["role"],
                "content": merged[-1]["content"] + "\n\n" + message["content"],
            }
        else:
            merged.append(dict(message))
    return merged
