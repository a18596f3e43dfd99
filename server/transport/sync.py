"""Catching up: what changed since a cursor (`/api/sync`) and the turns running now.

A client back from sleep asks once and learns everything: conversations
changed or created (whole), deletions, running turns, and a cursor for the
next time. While it is connected over WS the same changes are pushed to it
(`server/sync/`); this is how it catches up on whatever it missed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from server.auth import identity_of
from server.codec import json_response
from server.errors import SyncExpired
from server.storage.conversations import public_conversation
from server.sync.catchup import catch_up
from server.sync.cursor import MARGIN, SyncCursor
from server.transport.rest import invalid_query
from server.typedefs import changes_key, engine_key, limits_key, settings_key

routes = web.RouteTableDef()


@routes.get("/api/sync")
async def sync(request: web.Request) -> web.Response:
    identity = identity_of(request)
    raw = request.query.get("since")
    since = SyncCursor.decode(raw) if raw else None
    started = datetime.now(UTC)
    if since is not None:
        kept = timedelta(days=request.app[settings_key].sync_tombstone_days)
        if since.floor < started - kept:
            raise SyncExpired(
                f"This cursor is older than the {kept.days} days deletions are kept; "
                "sync again without `since` and replace what you have"
            )
        if since.floor > started + MARGIN:
            raise invalid_query("since", "is not a cursor this service issued")
    await request.app[limits_key].admit_sync(identity)
    changes = request.app[changes_key]
    floor = since.floor if since is not None else None
    conversations = await changes.conversations_since(identity, floor)
    deletions = await changes.deletions_since(identity, floor) if floor is not None else []
    running = await request.app[engine_key].running(identity)
    caught = catch_up(since, started, conversations, deletions)
    return json_response(
        {
            "conversations": [public_conversation(c) for c in caught.conversations],
            "deleted": caught.deleted,
            "running_turns": running,
            "cursor": caught.cursor.encode(),
        }
    )


@routes.get("/api/turns")
async def running_turns(request: web.Request) -> web.Response:
    """`?status=running`: the caller's turns running now, in any process."""
    if request.query.get("status") != "running":
        raise invalid_query("status", "must be running (the only list there is)")
    identity = identity_of(request)
    await request.app[limits_key].admit_sync(identity)
    return json_response({"items": await request.app[engine_key].running(identity)})
