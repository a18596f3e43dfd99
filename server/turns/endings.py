"""How a turn's start and end are told to clients: one builder for live turns and replays.

A live turn and a turn rebuilt from storage must end with the same event, so
both build it here, from the turn and its answer as stored.
"""

from __future__ import annotations

from typing import Any

from server.events import EventType
from server.storage.client import Document
from server.storage.conversations import public_message
from server.storage.turns import INTERRUPTED


def started(turn: Document) -> dict[str, Any]:
    """The `turn.started` payload."""
    return {
        "conversation_id": turn["conversation_id"],
        "user_message_id": turn.get("user_message_id"),
        "assistant_message_id": turn.get("assistant_message_id"),
        "model": turn.get("model"),
    }


def ending(turn: Document, answer: Document | None) -> tuple[EventType, dict[str, Any]]:
    """The terminal event's type and payload, from the turn's stored status."""
    message = public_message(answer) if answer else None
    status = turn["status"]
    if status == "complete" and answer is not None:
        payload = {
            "message": message,
            "usage": answer.get("usage"),
            "stop_reason": answer.get("stop_reason"),
        }
        return "turn.done", payload
    if status == "cancelled":
        return "turn.cancelled", {"message": message}
    error = turn.get("error") or INTERRUPTED
    partial = message if message and message.get("content") else None
    return "turn.error", {**error, "partial": partial}
