"""Events rebuilt from storage, for turns this process no longer holds in memory.

Two cases: a repeated `turn_id` of a finished turn (its result is replayed
without calling the model, one event per stored block: text, thinking, tool
calls and their results), and a resume of a turn whose live events are
gone (finished long ago, or running in another process).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from server.errors import Conflict, NotFound
from server.events import EventType, TurnEvent
from server.identity import Identity
from server.storage.client import Document
from server.storage.conversations import public_message
from server.storage.turn_records import RUNNING
from server.storage.turns import TurnStore
from server.turns import endings
from server.turns.failures import guarded

Reload = Callable[[], Awaitable[tuple[Document | None, Document | None]]]


async def stored_events(
    turn: Document,
    assistant: Document | None,
    *,
    after_seq: int,
    replay: bool,
    reload: Reload,
    interval: float,
) -> AsyncIterator[TurnEvent]:
    turn_id = str(turn["turn_id"])
    if replay:
        yield TurnEvent("turn.started", turn_id, 1, endings.started(turn))
        seq = 2
        for kind, payload in _answer_events(assistant):
            yield TurnEvent(kind, turn_id, seq, payload)
            seq += 1
        yield terminal_event(turn, assistant, seq)
        return
    seen: str | None = None
    while turn["status"] == "running":  # live in another process: follow its checkpoints
        content = str(assistant.get("content") or "") if assistant else ""
        if assistant is not None and content != seen:
            seen = content
            yield TurnEvent(
                "turn.snapshot", turn_id, after_seq, {"message": public_message(assistant)}
            )
        await asyncio.sleep(interval)
        fresh_turn, assistant = await reload()
        if fresh_turn is None:
            raise NotFound("The turn's conversation was deleted while it was followed")
        turn = fresh_turn
    final_seq = int(turn.get("final_seq") or after_seq + 2)
    # A follower that already has every event gets only the ending again.
    if assistant is not None and after_seq < final_seq:
        yield TurnEvent(
            "turn.snapshot", turn_id, final_seq - 1, {"message": public_message(assistant)}
        )
    yield terminal_event(turn, assistant, final_seq)


def _answer_events(assistant: Document | None) -> Iterator[tuple[EventType, dict[str, Any]]]:
    """The answer's blocks as events; an answer stored as plain text, as one delta."""
    if assistant is None:
        return
    blocks = assistant.get("blocks")
    if blocks:
        yield from endings.block_events(blocks)
    elif text := str(assistant.get("content") or ""):
        yield "turn.delta", {"text": text}


def terminal_event(turn: Document, assistant: Document | None, seq: int) -> TurnEvent:
    kind, payload = endings.ending(turn, assistant)
    return TurnEvent(kind, str(turn["turn_id"]), seq, payload)


class StoredTurns:
    """Turns this process does not hold, served from storage: replays, resumes, and follows
    handed over from Redis when the stream cannot go on."""

    def __init__(self, turns: TurnStore, *, interval: float) -> None:
        self._turns = turns
        self._interval = interval  # how often a running turn is read again (its checkpoints)

    async def replay(self, existing: Document) -> AsyncIterator[TurnEvent]:
        """A `turn.start` of a stored turn id: its answer again, or 409 while it runs."""
        if existing["status"] == RUNNING:
            raise Conflict(f"Turn {existing['turn_id']!r} is still running; resume it instead")
        return await self.follow(existing, after_seq=0, replay=True)

    async def follow(
        self, doc: Document, *, after_seq: int, replay: bool
    ) -> AsyncIterator[TurnEvent]:
        return guarded(str(doc["turn_id"]), await self._events(doc, after_seq, replay))

    async def from_storage(
        self, identity: Identity, turn_id: str, after_seq: int
    ) -> AsyncIterator[TurnEvent]:
        """A follow handed over to storage: the turn read again, as it is now."""
        doc = await self._turns.find(identity, turn_id)
        if doc is None:
            raise NotFound("The turn's conversation was deleted while it was followed")
        return await self._events(doc, after_seq, replay=False)

    async def _events(
        self, doc: Document, after_seq: int, replay: bool
    ) -> AsyncIterator[TurnEvent]:
        identity = Identity(str(doc["tenant_id"]), str(doc["user_id"]))
        turn_id = str(doc["turn_id"])

        async def reload() -> tuple[Document | None, Document | None]:
            fresh = await self._turns.find(identity, turn_id)
            return fresh, (await self._turns.assistant_message(fresh) if fresh else None)

        return stored_events(
            doc,
            await self._turns.assistant_message(doc),
            after_seq=after_seq,
            replay=replay,
            reload=reload,
            interval=self._interval,
        )
