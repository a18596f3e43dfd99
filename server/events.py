"""The typed events of a turn: what both transports serialise, frame for frame."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal[
    "turn.started",
    "turn.delta",
    "turn.thinking",
    "turn.tool_call",
    "turn.tool_result",
    "turn.citation",
    "turn.done",
    "turn.cancelled",
    "turn.error",
    "turn.snapshot",
]
TERMINAL_TYPES: frozenset[str] = frozenset({"turn.done", "turn.cancelled", "turn.error"})


@dataclass(frozen=True, slots=True)
class TurnEvent:
    type: EventType
    turn_id: str
    seq: int
    payload: dict[str, Any]
    # Where a delta's text starts within the whole answer; lets a lagging reader
    # be sent the text it missed even after the event itself was evicted.
    offset: int = field(default=0, compare=False)

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_TYPES

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent as a WS frame and as an SSE event's data."""
        return {"type": self.type, "turn_id": self.turn_id, "seq": self.seq, **self.payload}


def merge_deltas(events: list[TurnEvent]) -> list[TurnEvent]:
    """Fold runs of consecutive deltas into one, keeping the last seq of each run."""
    if len(events) == 1:  # a follower that keeps up: one event a wake
        return events
    merged: list[TurnEvent] = []
    for event in events:
        previous = merged[-1] if merged else None
        if previous is not None and previous.type == event.type == "turn.delta":
            text = previous.payload["text"] + event.payload["text"]
            merged[-1] = TurnEvent(
                "turn.delta", event.turn_id, event.seq, {"text": text}, offset=previous.offset
            )
        else:
            merged.append(event)
    return merged
