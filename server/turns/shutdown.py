"""A process's running turns at shutdown: a drain, then a stop, then their endings stored.

Every turn ends through the engine's one finaliser, even here: a turn stopped
after the drain is stored `interrupted` with its text and its followers are
told, before the transports close their connections.
"""

from __future__ import annotations

import asyncio
import logging

from server.turns.active import ActiveTurn

log = logging.getLogger("server.turns.engine")  # the name operators already filter on

# How long the turns stopped after the drain may take to store their endings
# (the database may be slow or away) before the finalisers stop retrying.
ENDING_GRACE_SECONDS = 5.0


async def drain_turns(
    running: list[ActiveTurn],
    seconds: float,
    *,
    closing: asyncio.Event,
) -> None:
    """Let `running` finish for `seconds`, then stop the rest and wait for their endings;
    past the grace period, set `closing` so that endings stop waiting for the database."""
    if not running:
        return
    log.info("draining %d running turn(s) for up to %g s", len(running), seconds)
    waits = [asyncio.ensure_future(active.done.wait()) for active in running]
    _, pending = await asyncio.wait(waits, timeout=seconds)
    if not pending:
        return
    left = [active for active in running if not active.done.is_set()]
    log.warning("stopping %d turn(s) still running after the drain", len(left))
    for active in left:
        active.stop(requested=False)  # stored `interrupted`
    _, pending = await asyncio.wait(pending, timeout=ENDING_GRACE_SECONDS)
    if pending:
        closing.set()  # the database is away: stop retrying the endings
        await asyncio.wait(pending)
