"""What a process of a deployment shares with the others through Redis, as one resource."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import cast

from redis.exceptions import RedisError

from server.cluster.broadcast import Broadcast
from server.cluster.cancels import CancelChannel
from server.cluster.connection import RedisLink
from server.cluster.follower import StillRunning, StreamFollower
from server.cluster.streams import Entry, StreamPublisher, decode, stream_key
from server.config import Settings
from server.events import TurnEvent
from server.identity import Identity

CHANGES_CHANNEL = "chat:changes"


class Cluster:
    """Redis for the turn engine: streams of running turns, and cancels to their owners;
    for the change feed, its pushes to every process."""

    def __init__(self, link: RedisLink, *, retention_seconds: float) -> None:
        self.link = link
        self.streams = StreamPublisher(link, retention_seconds=retention_seconds)
        self.cancels = CancelChannel(link)
        self.changes = Broadcast(link, CHANGES_CHANNEL)

    @property
    def available(self) -> bool:
        return self.link.available

    def mirror(self, identity: Identity, turn_id: str) -> Callable[[TurnEvent], None]:
        return self.streams.mirror(identity, turn_id)

    async def running(self, identity: Identity, turn_id: str) -> bool | None:
        """Whether the turn's stream says it runs (no ending yet); None: no stream, or
        Redis away. Read from Redis alone, so a cancel can be sent without waiting
        for the database."""
        if not self.link.available:
            return None
        try:
            newest = await self.link.client.xrevrange(stream_key(identity, turn_id), count=1)
        except RedisError as error:
            self.link.failed(error)
            return None
        entries = cast(list[Entry], newest)
        return not decode(turn_id, entries[0]).terminal if entries else None

    async def last_seqs(self, identity: Identity, turn_ids: list[str]) -> dict[str, int]:
        """The `seq` of each turn's newest event on its stream, in one round trip; a turn
        without a stream is left out. Empty while Redis is away."""
        if not turn_ids or not self.link.available:
            return {}
        try:
            async with self.link.client.pipeline(transaction=False) as pipe:
                for turn_id in turn_ids:
                    pipe.xrevrange(stream_key(identity, turn_id), count=1)
                found = cast(list[list[Entry]], await pipe.execute())
        except RedisError as error:
            self.link.failed(error)
            return {}
        # An entry's id is `0-<seq>` (streams.py).
        return {
            turn_id: int(entries[0][0].split(b"-", 1)[1])
            for turn_id, entries in zip(turn_ids, found, strict=True)
            if entries
        }

    def follow(
        self,
        identity: Identity,
        turn_id: str,
        after_seq: int,
        *,
        running: bool,
        still_running: StillRunning,
    ) -> StreamFollower:
        return StreamFollower(
            self.link,
            identity,
            turn_id,
            after_seq,
            running=running,
            still_running=still_running,
        )


@asynccontextmanager
async def open_cluster(settings: Settings) -> AsyncIterator[Cluster | None]:
    """The cluster link when `REDIS_URL` is set (None otherwise), up for the app's life.

    Start-up never waits for Redis: unreachable, the process runs in snapshot
    mode and joins when Redis answers. Closed after the engine, so the last
    turns' endings still reach the streams."""
    if settings.redis_url is None:
        yield None
        return
    link = RedisLink(settings.redis_url)
    cluster = Cluster(link, retention_seconds=settings.turn_retention_seconds)
    await link.start()
    cluster.streams.start()
    try:
        yield cluster
    finally:
        await cluster.changes.close()
        await cluster.cancels.close()
        await cluster.streams.close()
        await link.close()
