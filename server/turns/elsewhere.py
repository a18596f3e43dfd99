"""A turn this process does not hold: followed live from Redis, else from storage;
cancelled through Redis before any database read.

A turn running in another process (or finished there recently) is followed
on its Redis stream with the owner's own events, `seq` for `seq`. Wherever
the stream cannot continue (Redis away, the next event gone, the owner dead),
the follow carries on from MongoDB in snapshot mode from the last `seq` sent:
the client's `seq` never goes back and no text is lost or repeated, since a
snapshot replaces the text it had.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from server.cluster.cluster import Cluster
from server.errors import TurnNotRunning
from server.events import TurnEvent
from server.identity import Identity
from server.storage.client import Document
from server.storage.turn_records import RUNNING
from server.storage.turns import TurnStore

# The follow from storage, from a `seq` on (the turn read again, as it is now).
FromStorage = Callable[[int], Awaitable[AsyncIterator[TurnEvent]]]
Reload = Callable[[], Awaitable[Document | None]]


async def follow_elsewhere(
    cluster: Cluster,
    doc: Document,
    after_seq: int,
    *,
    reload: Reload,
    from_storage: FromStorage,
) -> AsyncIterator[TurnEvent]:
    async def still_running() -> bool:
        fresh = await reload()
        return fresh is not None and fresh["status"] == RUNNING

    follower = cluster.follow(
        Identity(str(doc["tenant_id"]), str(doc["user_id"])),
        str(doc["turn_id"]),
        after_seq,
        running=doc["status"] == RUNNING,
        still_running=still_running,
    )
    async for event in follower.events():
        yield event
    if follower.ended:
        return
    async for event in await from_storage(follower.cursor):
        yield event


async def cancel_elsewhere(
    cluster: Cluster, turns: TurnStore, identity: Identity, turn_id: str
) -> bool:
    """Cancel a turn running elsewhere as its Redis stream shows it: the owner is told
    before any database read (under load, that read is what made a cancel slow).
    False: no stream (Redis away, or the turn not on it); the database decides.

    The flag in storage is set too, so the owner stops at its next checkpoint
    should the message be lost. If the flag finds the turn ended since the stream
    said it ran, and `cancelled`, it is the message that ended it."""
    running = await cluster.running(identity, turn_id)
    if running is None:
        return False
    if running:
        await cluster.cancels.send(identity, turn_id)
        if await turns.request_cancel(identity, turn_id):
            return True
        fresh = await turns.find(identity, turn_id)
        if fresh is not None and fresh["status"] == "cancelled":
            return True
    raise TurnNotRunning(f"Turn {turn_id!r} has already ended")
