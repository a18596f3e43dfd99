"""Cancel requests sent to the process running the turn, over Pub/Sub.

Every process listens on one channel; the one holding the turn (for that
identity) stops it, at once instead of at its next checkpoint. The sender
publishes before it has read anything from MongoDB, so a slow database does
not delay the stop; cancels are rare, so every process hearing each one costs
nothing. The flag in MongoDB is still set by the engine: it is what stops the
turn when Redis is away or the message is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson
from redis.exceptions import RedisError

from server.cluster.connection import RETRY_SECONDS, SOCKET_TIMEOUT_SECONDS, RedisLink
from server.identity import Identity

log = logging.getLogger(__name__)

CHANNEL = "chat:cancel"

OnCancel = Callable[[Identity, str], None]


class CancelChannel:
    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._on_cancel: OnCancel | None = None
        self._task: asyncio.Task[None] | None = None

    def listen(self, on_cancel: OnCancel) -> None:
        """Call `on_cancel(identity, turn_id)` for each cancel sent to this process."""
        self._on_cancel = on_cancel
        self._task = asyncio.create_task(self._listen(), name="redis-cancels")

    async def send(self, identity: Identity, turn_id: str) -> None:
        """Ask the process holding a turn to cancel it; nothing happens if Redis is away."""
        if not self._link.available:
            return
        message = orjson.dumps([identity.tenant_id, identity.user_id, turn_id])
        try:
            await self._link.client.publish(CHANNEL, message)
        except RedisError as error:
            self._link.failed(error)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            await self._link.wait_available()
            try:
                await self._subscribed()
            except RedisError as error:
                self._link.failed(error)
            except Exception:  # a bug of ours: log it, keep listening
                log.exception("listening for cancels failed")
                await asyncio.sleep(RETRY_SECONDS)

    async def _subscribed(self) -> None:
        async with self._link.client.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(CHANNEL)
            while self._link.available:  # else subscribe again once it is back
                # Bounded, so that a Redis that went away silently is noticed.
                message = await pubsub.get_message(timeout=SOCKET_TIMEOUT_SECONDS)
                if message is not None:
                    self._received(message["data"])

    def _received(self, data: bytes) -> None:
        try:
            tenant_id, user_id, turn_id = orjson.loads(data)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            log.warning("ignored a malformed cancel message on %s", CHANNEL)
            return
        assert self._on_cancel is not None
        self._on_cancel(Identity(str(tenant_id), str(user_id)), str(turn_id))
