"""Checkpoints of every running turn of the process, in one batch per interval.

A turn's partial answer (text and blocks) is saved, and its lease renewed, every
`CHECKPOINT_INTERVAL_SECONDS`: for all running turns at once, in a constant
number of database operations (renew the leases, read the turns' states,
save the changed texts). Per-turn writes grew with the number of running
turns and were what throttled the embedded database under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from server.storage.turn_records import Lease, Progress
from server.storage.turns import TurnStore

if TYPE_CHECKING:
    from server.turns.active import ActiveTurn

log = logging.getLogger(__name__)

# What the engine does with a turn whose checkpoint came back other than `held`:
# `cancel_requested` (another process asked), `lost` (recovered by another
# process, or the lease could not be renewed in time).
OnLease = Callable[["ActiveTurn", Lease], None]


class Checkpointer:
    def __init__(
        self, turns: TurnStore, *, interval: float, lease_seconds: float, on_lease: OnLease
    ) -> None:
        self._turns = turns
        self._interval = interval
        self._lease_seconds = lease_seconds
        self._on_lease = on_lease
        self._running: dict[str, _Tracked] = {}  # by turn record id
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def track(self, active: ActiveTurn) -> None:
        self._running[active.record.id] = _Tracked(active)
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="checkpoints")

    def untrack(self, active: ActiveTurn) -> None:
        self._running.pop(active.record.id, None)

    async def close(self) -> None:
        # Stopped by an event, never cancelled: a write cut off mid-flight can
        # stall the embedded database's writer for its whole lock time-out.
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
            if self._running and not self._stop.is_set():
                await self._checkpoint(list(self._running.values()))

    async def _checkpoint(self, tracked: list[_Tracked]) -> None:
        entries = [(t.active.record, t.changed()) for t in tracked]
        try:
            states = await self._turns.checkpoint_many(entries)
        except Exception as error:  # the final write is what counts; keep streaming
            log.warning("checkpoint of %d turn(s) failed: %s", len(tracked), error)
            moment = time.monotonic()
            for item in tracked:
                if moment - item.renewed > self._lease_seconds:
                    # Unrenewed past the lease: another process may recover it any moment.
                    self._on_lease(item.active, "lost")
            return
        moment = time.monotonic()
        for item in tracked:
            state = states.get(item.active.record.id, "lost")
            if state != "lost":
                item.saved(moment)
            if state != "held":
                self._on_lease(item.active, state)


class _Tracked:
    """A running turn, and how far its answer was when the last checkpoint saved it."""

    __slots__ = ("active", "pending", "renewed", "written")

    def __init__(self, active: ActiveTurn) -> None:
        self.active = active
        # (text length, blocks version): cheap to compare, changes with every token or block.
        self.written = (0, 0)
        self.pending = (0, 0)
        self.renewed = time.monotonic()

    def changed(self) -> Progress | None:
        self.pending = (self.active.log.text_length, self.active.answer.version)
        return self.active.progress() if self.pending != self.written else None

    def saved(self, moment: float) -> None:
        self.written, self.renewed = self.pending, moment
