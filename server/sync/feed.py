"""Changes pushed to every device of a user: the sockets of this process, and through
Redis those of every other.

A change is delivered here at once (no round trip) and, with `REDIS_URL`, sent
on one Pub/Sub channel every process hears; each delivers it to its own
sockets of that user and ignores its own messages. Without Redis, or while
it is away, only this process's sockets are told: pushes are a courtesy on
top of `/api/sync`, which finds every change in MongoDB.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson

from server.cluster.broadcast import Broadcast
from server.identity import Identity
from server.sync.changes import Change
from server.sync.cursor import SyncCursor
from server.sync.inbox import Inbox

log = logging.getLogger(__name__)

CHANNEL = "chat:changes"


class ChangeFeed:
    def __init__(self, broadcast: Broadcast | None = None) -> None:
        self._inboxes: dict[Identity, set[Inbox]] = {}
        self._broadcast = broadcast
        self._process = uuid.uuid4().hex  # its own messages come back from Redis: skipped
        if broadcast is not None:
            broadcast.start(self._heard)

    def attach(self, identity: Identity, inbox: Inbox) -> None:
        self._inboxes.setdefault(identity, set()).add(inbox)

    def detach(self, identity: Identity, inbox: Inbox) -> None:
        inboxes = self._inboxes.get(identity)
        if inboxes is not None:
            inboxes.discard(inbox)
            if not inboxes:
                del self._inboxes[identity]

    def publish(self, change: Change) -> None:
        """Tell every socket of the change's user, here and (with Redis) elsewhere; never waits."""
        self._deliver(change)
        if self._broadcast is not None:
            self._broadcast.send(self._encode(change))

    def _deliver(self, change: Change) -> None:
        for inbox in self._inboxes.get(change.identity, ()):
            inbox.put(change)

    def _encode(self, change: Change) -> bytes:
        return orjson.dumps(
            {
                "process": self._process,
                "tenant_id": change.identity.tenant_id,
                "user_id": change.identity.user_id,
                "type": change.type,
                "key": change.key,
                "payload": change.payload,
                "cursor": change.cursor.encode(),
                "origin": change.origin,
            }
        )

    def _heard(self, data: bytes) -> None:
        try:
            message: dict[str, Any] = orjson.loads(data)
            if message["process"] == self._process:
                return
            identity = Identity(str(message["tenant_id"]), str(message["user_id"]))
            if identity not in self._inboxes:
                return  # none of this user's sockets is here
            change = Change(
                identity,
                message["type"],
                str(message["key"]),
                message["payload"],
                SyncCursor.decode(message["cursor"], field_name="cursor"),
                message.get("origin"),
            )
        except Exception as error:  # a malformed message must not stop the listener
            log.warning("ignored a malformed message on %s: %s", CHANNEL, error)
            return
        self._deliver(change)
