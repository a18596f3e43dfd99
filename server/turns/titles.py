"""Titles for new conversations, asked of the model after the first exchange.

Background work that must never delay or fail a turn. At shutdown, questions
to the model are dropped, but writes already under way are finished: the
embedded database stalls for its lease time-out (about 30 s) after a write
cut off mid-flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from server.model.base import Model
from server.storage.client import Document
from server.storage.conversations import Store
from server.turns.background import spawn

log = logging.getLogger(__name__)


class Titler:
    def __init__(
        self, model: Model, store: Store, *, on_titled: Callable[[Document], None]
    ) -> None:
        """`on_titled` is told each conversation named, as stored (the change feed)."""
        self._model = model
        self._store = store
        self._on_titled = on_titled
        self._asking: set[asyncio.Task[None]] = set()
        self._writing: set[asyncio.Task[None]] = set()

    def title_later(self, conversation_id: str, question: str, answer: str) -> None:
        spawn(self._asking, self._ask(conversation_id, question, answer))

    async def close(self) -> None:
        for task in list(self._asking):
            task.cancel()
        await asyncio.gather(*self._asking, return_exceptions=True)
        await asyncio.gather(*self._writing, return_exceptions=True)

    async def _ask(self, conversation_id: str, question: str, answer: str) -> None:
        try:
            title = await self._model.title(question, answer)
        except Exception as error:  # a title is a nicety; never fail a turn over it
            log.warning("could not title conversation %s: %s", conversation_id, error)
            return
        spawn(self._writing, self._write(conversation_id, title))

    async def _write(self, conversation_id: str, title: str) -> None:
        try:
            # Only over the empty title: a user who renamed it meanwhile wins.
            titled = await self._store.set_title(conversation_id, title, only_if="")
        except Exception as error:
            log.warning("could not store the title of conversation %s: %s", conversation_id, error)
            return
        if titled is not None:
            self._on_titled(titled)
