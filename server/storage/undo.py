"""A turn start's writes, noted as each lands, so that a start that fails or is abandoned
is undone whole: never a `running` turn holding its conversation with nothing running it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[object]]


class StartUndo:
    def __init__(self, turn_id: str) -> None:
        self.turn_id = turn_id
        self._steps: list[Step] = []

    def note(self, step: Step) -> None:
        """What undoes the write that just landed."""
        self._steps.append(step)

    async def run(self) -> None:
        """Undo what landed, last first; what cannot be undone the sweep frees later."""
        for step in reversed(self._steps):
            try:
                await step()
            except PyMongoError as error:  # the sweep frees what is left once the lease expires
                log.warning("could not undo a failed start of turn %s: %s", self.turn_id, error)

    async def after(self, begun: Awaitable[object]) -> None:
        """Once the start in flight has settled (its last write may land after a cancel,
        with its undo not yet noted), undo all of it."""
        with contextlib.suppress(Exception):
            await begun
        await self.run()
