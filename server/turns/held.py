"""The turns this process holds in memory: running ones, and finished ones kept for resume.

A finished turn's events are kept for `TURN_RETENTION_SECONDS` so a client
that reconnects resumes from memory; at most `TURN_RETENTION_MAX` of them, the
oldest going first, so memory stays bounded under any traffic. A turn no
longer held is rebuilt from storage (`replay.py`).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from server.identity import Identity
from server.turns.active import ActiveTurn, TurnKey


class HeldTurns:
    def __init__(self, *, retention_seconds: float, retention_max: int) -> None:
        self._retention_seconds = retention_seconds
        self._retention_max = retention_max
        self._turns: dict[TurnKey, ActiveTurn] = {}
        self._finished: OrderedDict[TurnKey, ActiveTurn] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._turns)

    def get(self, identity: Identity, turn_id: str) -> ActiveTurn | None:
        return self._turns.get((identity.tenant_id, identity.user_id, turn_id))

    def add(self, active: ActiveTurn) -> None:
        self._turns[active.key] = active

    def all(self) -> list[ActiveTurn]:
        """A copy: callers stop turns, and stopped turns leave."""
        return list(self._turns.values())

    def running(self) -> list[ActiveTurn]:
        return [active for active in self._turns.values() if not active.done.is_set()]

    def finished(self, active: ActiveTurn) -> None:
        """Keep a finished turn's events for resume: for a while, and only so many turns."""
        self._finished[active.key] = active
        while len(self._finished) > self._retention_max:
            _, oldest = self._finished.popitem(last=False)
            self._forget(oldest)
        asyncio.get_running_loop().call_later(self._retention_seconds, self._forget, active)

    def _forget(self, active: ActiveTurn) -> None:
        key = active.key
        self._finished.pop(key, None)
        if self._turns.get(key) is active:
            del self._turns[key]
