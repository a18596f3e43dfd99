"""One socket's pushes waiting to be sent: coalesced, bounded, never silently short.

A socket that reads slowly must not make the service buffer without bound,
as with turn events (whose deltas merge). Pushes are whole objects, so a
newer push about the same conversation (or turn) replaces the one waiting:
nothing is lost but intermediate versions. At most `BACKLOG` conversations
and turns wait; beyond, the oldest is dropped, and from then on every push
this socket is sent carries a cursor no later than the dropped one's, so a
client that keeps the cursor of the last push it read still finds the
dropped change with `/api/sync`.

A conversation once deleted is never changed again (ids are not reused): a
`conversation.changed` that arrives after its deletion (two processes' pushes
crossing) is stale and is not sent.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime
from typing import Any

from server.sync.changes import Change
from server.sync.cursor import SyncCursor

BACKLOG = 256
REMEMBERED_DELETIONS = 1024


class Inbox:
    def __init__(self, socket_id: str, *, backlog: int = BACKLOG) -> None:
        self.socket_id = socket_id
        self._backlog = backlog
        self._waiting: OrderedDict[tuple[str, str], Change] = OrderedDict()  # oldest first
        self._deleted: OrderedDict[str, None] = OrderedDict()
        self._behind: datetime | None = None  # the floor of the oldest push dropped
        self._wake = asyncio.Event()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def put(self, change: Change) -> None:
        if change.origin is not None and change.origin == self.socket_id:
            return
        if change.type == "conversation.changed" and change.key in self._deleted:
            return
        if change.type == "conversation.deleted":
            self._deleted[change.key] = None
            if len(self._deleted) > REMEMBERED_DELETIONS:
                self._deleted.popitem(last=False)
        subject = ("turn" if change.type == "turn.running" else "conversation", change.key)
        self._waiting.pop(subject, None)  # the newer one goes last, where it arrived
        self._waiting[subject] = change
        while len(self._waiting) > self._backlog:
            _, dropped = self._waiting.popitem(last=False)
            self.dropped += 1
            floor = dropped.cursor.floor
            self._behind = floor if self._behind is None else min(self._behind, floor)
        self._wake.set()

    async def next(self) -> dict[str, Any]:
        """The next frame to send, waiting for one."""
        while not self._waiting:
            self._wake.clear()
            await self._wake.wait()
        _, change = self._waiting.popitem(last=False)
        if self._behind is None:
            return change.frame()
        return change.frame(SyncCursor(min(self._behind, change.cursor.floor)))
