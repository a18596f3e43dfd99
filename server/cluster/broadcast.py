"""One Pub/Sub channel every process sends to and hears, for messages that may be lost.

The change feed's pushes (`server/sync/`) travel here: sending never waits
(the message is queued and one writer task publishes), hearing calls back
with the raw bytes. A message is lost while Redis is away or when the queue
overflows (Redis too slow for `QUEUE_MAX` messages): whoever relies on it
must have another way to catch up (the feed has `/api/sync`).

Every process hears every message: one channel, no subscription per user to
keep in step with sockets. Fine while messages are few (a handful per turn,
not per token); a channel per user is the next step if that stops being true.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from redis.exceptions import RedisError

from server.cluster.connection import RETRY_SECONDS, SOCKET_TIMEOUT_SECONDS, RedisLink

log = logging.getLogger(__name__)

QUEUE_MAX = 10_000
BATCH_MAX = 100  # messages one pipeline publishes

OnMessage = Callable[[bytes], None]


class Broadcast:
    def __init__(self, link: RedisLink, channel: str) -> None:
        self._link = link
        self._channel = channel
        self._queued: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._overflowing = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, on_message: OnMessage) -> None:
        """Publish what `send` queues, and call `on_message` with each message heard."""
        self._tasks = [
            asyncio.create_task(self._write(), name=f"redis-send:{self._channel}"),
            asyncio.create_task(self._listen(on_message), name=f"redis-hear:{self._channel}"),
        ]

    def send(self, message: bytes) -> None:
        """Queue a message for every process; dropped while Redis is away or far behind."""
        if not self._link.available:
            return
        if len(self._queued) >= QUEUE_MAX:
            if not self._overflowing:
                self._overflowing = True
                log.warning("Redis is behind: messages on %s are dropped", self._channel)
            return
        self._overflowing = False
        self._queued.append(message)
        self._wake.set()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queued:
                batch = [self._queued.popleft() for _ in range(min(BATCH_MAX, len(self._queued)))]
                try:
                    async with self._link.client.pipeline(transaction=False) as pipe:
                        for message in batch:
                            pipe.publish(self._channel, message)
                        await pipe.execute()
                except RedisError as error:  # lost: the receivers catch up their own way
                    self._link.failed(error)
                    self._queued.clear()

    async def _listen(self, on_message: OnMessage) -> None:
        while True:
            await self._link.wait_available()
            try:
                async with self._link.client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    while self._link.available:  # else subscribe again once it is back
                        # Bounded, so that a Redis that went away silently is noticed.
                        message = await pubsub.get_message(timeout=SOCKET_TIMEOUT_SECONDS)
                        if message is not None:
                            on_message(message["data"])
            except RedisError as error:
                self._link.failed(error)
            except Exception:  # a bug of ours: log it, keep listening
                log.exception("listening on %s failed", self._channel)
                await asyncio.sleep(RETRY_SECONDS)
