"""What changed since a cursor (`GET /api/sync`; the WS pushes carry the same cursor)."""

from __future__ import annotations

from pydantic import Field

from server.contract.shapes.base import Shape
from server.contract.shapes.conversations import Conversation
from server.contract.shapes.turns import RunningTurn

Cursor = Field(description="Opaque; pass as `since` to `GET /api/sync` for what changed after this")


class SyncPage(Shape):
    """What changed since a cursor: enough to bring a client's copy up to date in one request."""

    conversations: list[Conversation] = Field(
        description="Created or changed since the cursor (all of them without `since`), whole. "
        "Apply them, then `deleted`"
    )
    deleted: list[str] = Field(description="Ids of conversations deleted since the cursor")
    running_turns: list[RunningTurn] = Field(description="Every turn running now")
    cursor: str = Cursor
