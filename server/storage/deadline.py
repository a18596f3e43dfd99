"""How long a request may wait for the database: answered within seconds if it hangs,
waited for while it is only busy.

A database that died is noticed at once (no server to select); one that hangs
(stopped, swapping, a network partition that drops packets) keeps its
sockets open, and the driver would wait for each reply without end (23-24 s
per request were measured with the embedded database stopped by SIGSTOP).
So each request's database work runs under one deadline
(`STORAGE_TIMEOUT_SECONDS`, 2.5 s), and past it the client is told
`storage_unavailable`, retryable. A deadline, not the driver's
per-operation `timeoutMS`: that would also cut the turn engine's own writes
(checkpoints, endings), which must wait for the database instead, retrying.

But a database that is only busy (200 turns starting in the same second
queue behind its one writer) is not away, and failing those requests would
turn a burst into errors. So a little before the deadline the database is
asked a ping on a connection of its own, outside the busy pool (measured
under such a burst: p99 154 ms): if it answers, the deadline moves on by
another `seconds`, up to `BUSY_LIMIT_SECONDS` in all; if it does not, the
deadline holds. One ping serves every request waiting at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from server.errors import StorageUnavailable

log = logging.getLogger(__name__)

# How long a busy database is waited for, in all, before the request is answered 503.
BUSY_LIMIT_SECONDS = 30.0
# How long the ping may take, at most, before the deadline it could extend.
PROBE_SECONDS = 1.0
# A ping answered this recently needs no other.
FRESH_SECONDS = 0.25

Ping = Callable[[], Awaitable[object]]


class StorageDeadline:
    """`async with deadline():` bounds the block's database work (see the module's doc)."""

    def __init__(self, seconds: float, ping: Ping, *, busy_limit: float = BUSY_LIMIT_SECONDS):
        self.seconds = seconds
        self.busy_limit = max(busy_limit, seconds)
        self._ping = ping
        self._probe: asyncio.Task[bool] | None = None
        self._answered_at = float("-inf")
        self.extended = 0  # deadlines moved on because the database answered: a busy store

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        """Run the block's database work within the deadline, else `StorageUnavailable`.

        Wrap database work only: any `TimeoutError` inside reads as the database's."""
        try:
            async with asyncio.timeout(self.seconds) as scope:
                watch = asyncio.create_task(self._watch(scope))
                try:
                    yield
                finally:
                    watch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watch
        except TimeoutError:
            raise StorageUnavailable(
                f"The database did not answer within {self.seconds:g} s; try again shortly."
            ) from None

    async def _watch(self, scope: asyncio.Timeout) -> None:
        """Move the deadline on while the database answers its pings."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.busy_limit
        window = min(PROBE_SECONDS, self.seconds)
        while True:
            when = scope.when()
            if when is None:
                return
            await asyncio.sleep(max(0.0, when - window - loop.time()))
            if not await self._alive(window):
                return  # hung or gone: the deadline holds
            extended = min(loop.time() + self.seconds, give_up)
            if extended <= when:
                return  # busy for too long: the deadline holds
            scope.reschedule(extended)
            self.extended += 1

    async def _alive(self, window: float) -> bool:
        loop = asyncio.get_running_loop()
        if loop.time() - self._answered_at < FRESH_SECONDS:
            return True
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._pinged())
        try:
            async with asyncio.timeout(window):
                return await asyncio.shield(self._probe)
        except TimeoutError:
            return False

    async def _pinged(self) -> bool:
        try:
            await self._ping()
        except Exception as error:  # any failure to answer: not alive
            log.debug("storage liveness ping failed: %s", error)
            return False
        self._answered_at = asyncio.get_running_loop().time()
        return True
