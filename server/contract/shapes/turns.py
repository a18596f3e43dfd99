"""A turn's status, the turns running now, and a cancel's acknowledgement."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from server.contract.shapes.base import Shape

TurnState = Literal["running", "complete", "cancelled", "interrupted", "error"]


class TurnStatus(Shape):
    turn_id: str
    status: TurnState
    conversation_id: str
    assistant_message_id: str


class RunningTurn(Shape):
    """A turn running now, in whichever process: resume it to follow it live."""

    turn_id: str
    conversation_id: str
    started_at: datetime
    last_seq: int = Field(
        ge=1,
        description=(
            "The `seq` of its latest event as far as known (exact in the process running it "
            "or with Redis; else as of its last checkpoint). Resume with `after_seq: 0` to "
            "get it all"
        ),
    )


class RunningTurns(Shape):
    items: list[RunningTurn] = Field(description="Oldest first")


class CancelAccepted(Shape):
    turn_id: str
    status: Literal["cancelling"]
