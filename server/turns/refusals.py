"""Starts the limits refuse: replayed if their `turn_id` is stored, else refused.

A replay counts against no limit, so even a user at its limits is looked up,
but one start at a time however many sockets it floods from, and only a few a
second (`Limits.may_look_up`); a new turn is refused without a write. Such a
user slows only itself, never the others' turn starts (`python -m bench
--only fairness`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from server.errors import DomainError
from server.events import TurnEvent
from server.identity import Identity
from server.limits import Limits
from server.storage.turns import TurnStore
from server.turns.replay import StoredTurns


class RefusedStarts:
    def __init__(self, limits: Limits, turns: TurnStore, stored_turns: StoredTurns) -> None:
        self._limits, self._turns, self._stored_turns = limits, turns, stored_turns

    async def replay_if_refused(
        self, identity: Identity, turn_id: str
    ) -> AsyncIterator[TurnEvent] | None:
        """None when the limits have room; else the stored turn's replay, or the refusal."""
        refusal = await self._limits.refusal(identity)
        if refusal is None:
            return None
        return await self.replay_or_refuse(refusal, identity, turn_id)

    async def replay_or_refuse(
        self, refusal: DomainError, identity: Identity, turn_id: str
    ) -> AsyncIterator[TurnEvent]:
        """The stored turn's replay, or `refusal` raised (also when this user's lookups
        are spent for now)."""
        if not self._limits.may_look_up(identity):
            raise refusal
        async with self._limits.one_at_a_time(identity):
            existing = await self._turns.find(identity, turn_id)
        if existing is None:
            raise refusal
        return await self._stored_turns.replay(existing)
