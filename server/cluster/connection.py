"""The one Redis client of the process, and whether Redis is there right now.

Everything that uses Redis asks `available` first and reports a failure with
`failed()`; the link then logs one line, tries Redis again in the background
every `RETRY_SECONDS`, and logs one line when it is back. Short socket
time-outs and a single retry mean no caller waits long on a Redis that is
gone: callers fall back to MongoDB instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 0.5
# Above the longest blocking read (`follower.BLOCK_MILLISECONDS`), so that a read
# waiting for the next event is never mistaken for a Redis that stopped answering.
SOCKET_TIMEOUT_SECONDS = 2.0
RETRY_SECONDS = 0.5


class RedisLink:
    def __init__(self, url: str) -> None:
        # One retry, at once: it replaces a pooled connection that died with a
        # restarted Redis; more retries would only delay the fallback.
        self.client: Redis = Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1),
        )
        kwargs = self.client.connection_pool.connection_kwargs
        # Named in log lines without the password the URL may carry.
        self.where = str(kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}")
        self._up = asyncio.Event()
        self._down_logged = False
        self._recovering: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def available(self) -> bool:
        return self._up.is_set()

    async def wait_available(self) -> None:
        await self._up.wait()

    async def start(self) -> None:
        """Try Redis once; if it does not answer, carry on without it and keep trying."""
        try:
            await self._ping()
        except (RedisError, OSError, TimeoutError) as error:
            self.failed(error)
            return
        self._up.set()
        log.info("Redis at %s: live resume and cancel across processes are on", self.where)

    def failed(self, error: BaseException) -> None:
        """A Redis call failed: fall back to MongoDB (one log line) until Redis answers again."""
        if self._closed:
            return
        self._up.clear()
        if not self._down_logged:
            self._down_logged = True
            log.warning(
                "Redis at %s is unavailable (%s): resume and cancel across processes fall "
                "back to MongoDB until it answers again",
                self.where,
                error.__class__.__name__,
            )
        if self._recovering is None or self._recovering.done():
            self._recovering = asyncio.create_task(self._recover(), name="redis-recover")

    async def close(self) -> None:
        self._closed = True
        self._up.clear()
        if self._recovering is not None:
            self._recovering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovering
        await self.client.aclose()

    async def _recover(self) -> None:
        while True:
            await asyncio.sleep(RETRY_SECONDS)
            try:
                await self._ping()
            except (RedisError, OSError, TimeoutError):
                continue
            self._down_logged = False
            self._up.set()
            log.warning("Redis at %s is back: live resume and cancel across processes", self.where)
            return

    async def _ping(self) -> None:
        async with asyncio.timeout(SOCKET_TIMEOUT_SECONDS):
            await self.client.ping()
