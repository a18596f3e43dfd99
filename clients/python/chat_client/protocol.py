"""The rules every client of the service follows, whatever its transport.

Port these first: they are what makes a resumed turn lose nothing and repeat
nothing (docs/protocol.md, "`seq` and resume").
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

TERMINAL = frozenset({"turn.done", "turn.cancelled", "turn.error"})
# Frames pushed when something changes on the user's other devices (the change feed).
PUSHES = frozenset({"conversation.changed", "conversation.deleted", "turn.running"})


def is_terminal(frame: dict[str, Any]) -> bool:
    return frame.get("type") in TERMINAL


def seq_after(last_seq: int, frame: dict[str, Any]) -> int | None:
    """The seq a turn has reached once `frame` is taken; None: a frame already had.

    A resume may repeat events, and `seq` may skip numbers (merged deltas). A
    snapshot stands for everything up to its seq, even below ours (a resume from
    a seq the turn never reached); a terminal event is always taken.
    """
    seq = frame.get("seq")
    if not isinstance(seq, int):
        return last_seq
    if frame["type"] == "turn.snapshot" or is_terminal(frame):
        return seq
    return seq if seq > last_seq else None


def backoff(attempt: int, *, first: float = 0.5, cap: float = 10.0) -> float:
    """Seconds before reconnect `attempt` (1, 2, ...): doubling, capped, with jitter, so
    clients cut off by one restart do not all come back in the same instant."""
    base = first * 2.0 ** max(0, attempt - 1)
    return min(cap, base * random.uniform(0.8, 1.2))


@dataclass
class Answer:
    """A turn's answer as a client builds it from the events it takes."""

    turn_id: str
    last_seq: int = 0
    text: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)  # every event taken
    ending: dict[str, Any] | None = None

    def take(self, frame: dict[str, Any]) -> bool:
        """Apply one event of this turn; False when it repeats one already taken."""
        seq = seq_after(self.last_seq, frame)
        if seq is None:
            return False
        self.last_seq = seq
        kind = frame["type"]
        if kind == "turn.delta":
            self.text += frame["text"]  # merged deltas too: always append
        elif kind == "turn.snapshot":
            self.text = frame["message"]["content"]  # replaces what we had
        elif kind in ("turn.done", "turn.cancelled"):
            self.text = frame["message"]["content"]  # the stored answer has the last word
        elif kind == "turn.error" and frame.get("partial"):
            self.text = frame["partial"]["content"]
        if is_terminal(frame):
            self.ending = frame
        self.events.append(frame)
        return True
