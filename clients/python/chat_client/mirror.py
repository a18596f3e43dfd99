"""A client's copy of the user's conversations, kept current by `/api/sync` and pushes.

The whole change-feed contract in one place (docs/protocol.md, "Clients
that come back"): apply changed conversations, then deletions; a deletion is
final; keep the cursor of the last sync or push; start over on `sync_expired`.
A phone would keep `conversations` and `cursor` on disk between launches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chat_client.errors import ApiError

JSON = dict[str, Any]
Sync = Callable[[str | None], Awaitable[JSON]]


class Mirror:
    def __init__(self) -> None:
        self.conversations: dict[str, JSON] = {}
        self.running_turns: dict[str, JSON] = {}  # as of the last sync, plus those pushed since
        self.cursor: str | None = None
        self._deleted: set[str] = set()

    def started(self, cursor: str | None) -> None:
        """A socket is ready: with no cursor of our own, changes from now on are enough."""
        if self.cursor is None:
            self.cursor = cursor

    async def catch_up(self, sync: Sync) -> JSON:
        """One request: what changed since our cursor (everything the first time)."""
        since = self.cursor
        try:
            page = await sync(since)
        except ApiError as error:
            if error.code != "sync_expired":
                raise
            since, self.cursor = None, None  # too old: replace what we have
            page = await sync(None)
        if since is None:
            self.conversations.clear()
        self.apply_sync(page)
        return page

    def apply_sync(self, page: JSON) -> None:
        for conversation in page["conversations"]:
            self._changed(conversation)
        for conversation_id in page["deleted"]:
            self._gone(conversation_id)
        self.running_turns = {turn["turn_id"]: turn for turn in page["running_turns"]}
        self.cursor = page["cursor"]

    def apply_push(self, frame: JSON) -> None:
        """A frame pushed over the WebSocket; unknown types are skipped (later versions)."""
        kind = frame.get("type")
        if kind == "conversation.changed":
            self._changed(frame["conversation"])
        elif kind == "conversation.deleted":
            self._gone(frame["conversation_id"])
        elif kind == "turn.running":
            self.running_turns[frame["turn"]["turn_id"]] = frame["turn"]
        else:
            return
        self.cursor = frame["cursor"]

    def turn_ended(self, turn_id: str) -> None:
        self.running_turns.pop(turn_id, None)

    def _changed(self, conversation: JSON) -> None:
        if conversation["id"] not in self._deleted:  # a late push of a deleted one
            self.conversations[conversation["id"]] = conversation

    def _gone(self, conversation_id: str) -> None:
        self._deleted.add(conversation_id)
        self.conversations.pop(conversation_id, None)
