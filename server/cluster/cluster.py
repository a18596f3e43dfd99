"""What a process of a deployment shares with the others through Redis, as one resource."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from server.cluster.cancels import CancelChannel
from server.cluster.connection import RedisLink
from server.cluster.follower import StillRunning, StreamFollower
from server.cluster.streams import StreamPublisher
from server.config import Settings
from server.events import TurnEvent


class Cluster:
    """Redis for the turn engine: streams of running turns, and cancels to their owners."""

    def __init__(self, link: RedisLink, owner: str, *, retention_seconds: float) -> None:
        self.link = link
        self.streams = StreamPublisher(link, retention_seconds=retention_seconds)
        self.cancels = CancelChannel(link, owner)

    @property
    def available(self) -> bool:
        return self.link.available

    def mirror(self, turn_record_id: str) -> Callable[[TurnEvent], None]:
        return self.streams.mirror(turn_record_id)

    def follow(
        self,
        turn_record_id: str,
        turn_id: str,
        after_seq: int,
        *,
        running: bool,
        still_running: StillRunning,
    ) -> StreamFollower:
        return StreamFollower(
            self.link,
            turn_record_id,
            turn_id,
            after_seq,
            running=running,
            still_running=still_running,
        )


@asynccontextmanager
async def open_cluster(settings: Settings, owner: str) -> AsyncIterator[Cluster | None]:
    """The cluster link when `REDIS_URL` is set (None otherwise), up for the app's life.

    Start-up never waits for Redis: unreachable, the process runs in snapshot
    mode and joins when Redis answers. Closed after the engine, so the last
    turns' endings still reach the streams."""
    if settings.redis_url is None:
        yield None
        return
    link = RedisLink(settings.redis_url)
    cluster = Cluster(link, owner, retention_seconds=settings.turn_retention_seconds)
    await link.start()
    cluster.streams.start()
    try:
        yield cluster
    finally:
        await cluster.cancels.close()
        await cluster.streams.close()
        await link.close()
