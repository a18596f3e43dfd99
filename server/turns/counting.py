"""True token counts for the history, asked of the provider once per message.

The context budget trims history by each message's count. An estimate (four
characters a token) is free and works offline; with an API key, each question
and answer is counted by Anthropic's token counting endpoint once, after its
turn ends, in the background, and stored on the message as `tokens`: a turn
then counts only what is new, and never waits for a count (a message not yet
counted, or whose count failed, keeps the estimate). The offline model counts
nothing: its history is trimmed by the estimate, as `/api/models` says.

The endpoint counts whole requests, so a message is counted inside the
smallest valid one: an answer after a one-character question, minus that
question's own count (once per model and tool set); with the tool
definitions when the answer used tools (the API requires them). Attachments
keep their own estimate (`files/blocks.py`): counting them would send every
file's bytes again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from server.files.blocks import attachments_tokens, is_reference
from server.model.base import ContextMessage, Model
from server.storage.client import Document
from server.tools.toolbox import ToolBox
from server.turns.background import spawn
from server.turns.context import messages_of

log = logging.getLogger(__name__)

PROBE: ContextMessage = {"role": "user", "content": "."}
TOOL_BLOCKS = {"tool_use", "tool_result", "server_tool_use"}


class TokenCounter:
    def __init__(
        self, model: Model | None, messages: AsyncCollection[Document], tools: ToolBox
    ) -> None:
        """`model`: None counts nothing (offline, or `TOKEN_COUNTS=estimate`)."""
        self._model = model
        self._messages = messages
        self._tools = tools
        self._probes: dict[Any, int] = {}  # the probe question's own count (`tokens_of`)
        self._counting: set[asyncio.Task[None]] = set()
        self._writing: set[asyncio.Task[None]] = set()  # finished even at shutdown

    def count_later(self, model: str, stored: Sequence[Document]) -> None:
        """Count and store each of `stored` (a question, an answer): never awaited by a turn."""
        if self._model is None or not stored:
            return
        spawn(self._counting, self._count(self._model, model, stored, self._tools.specs()))

    async def close(self) -> None:
        for task in list(self._counting):
            task.cancel()
        await asyncio.gather(*self._counting, return_exceptions=True)
        await asyncio.gather(*self._writing, return_exceptions=True)

    async def _count(
        self, counting: Model, model: str, stored: Sequence[Document], tools: list[Any]
    ) -> None:
        for doc in stored:
            try:
                tokens = await tokens_of(counting, self._probes, model, doc, tools)
            except Exception as error:  # a count is a refinement; the estimate stands
                log.info("could not count message %s: %s", doc.get("_id"), error)
                continue
            if tokens is not None:
                spawn(self._writing, self._write(doc["_id"], tokens))

    async def _write(self, message_id: Any, tokens: int) -> None:
        try:
            await self._messages.update_one({"_id": message_id}, {"$set": {"tokens": tokens}})
        except Exception as error:
            log.info("could not store the count of message %s: %s", message_id, error)


async def tokens_of(
    counting: Model, probes: dict[Any, int], model: str, doc: Document, tools: list[Any]
) -> int | None:
    """The message's tokens as the provider counts them; None when it has none to count.

    `probes` keeps the probe question's own count per model and tool set."""
    files = attachments_tokens([b for b in doc.get("blocks") or () if is_reference(b)])
    messages = [_without_files(m) for m in messages_of(doc)]
    if not messages:
        return None
    given = tools if any(_has_tool_blocks(m) for m in messages) else []
    if messages[0]["role"] == "user":  # a question: counted alone
        counted = await counting.count_tokens(model=model, messages=messages, tools=given)
        return None if counted is None else counted + files
    key = (model, tuple(str(t.get("name")) for t in given))
    if key not in probes:
        probe = await counting.count_tokens(model=model, messages=[PROBE], tools=given)
        if probe is None:
            return None
        probes[key] = probe
    counted = await counting.count_tokens(model=model, messages=[PROBE, *messages], tools=given)
    return None if counted is None else max(counted - probes[key], 1) + files


def _without_files(message: ContextMessage) -> ContextMessage:
    content = message["content"]
    if isinstance(content, str):
        return message
    kept = [block for block in content if not is_reference(block)]
    return {**message, "content": kept or "."}


def _has_tool_blocks(message: ContextMessage) -> bool:
    content = message["content"]
    return not isinstance(content, str) and any(b.get("type") in TOOL_BLOCKS for b in content)
