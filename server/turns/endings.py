"""How a turn is told to clients: one builder for live turns and replays.

A live turn and a turn rebuilt from storage must start, use tools and end
with the same events, so both build them here, from the turn, its blocks and
its answer as stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from server.events import EventType
from server.storage.client import Document
from server.storage.conversations import public_message
from server.storage.turns import INTERRUPTED

PREVIEW_CHARS = 200


def started(turn: Document) -> dict[str, Any]:
    """The `turn.started` payload."""
    return {
        "conversation_id": turn["conversation_id"],
        "user_message_id": turn.get("user_message_id"),
        "assistant_message_id": turn.get("assistant_message_id"),
        "model": turn.get("model"),
    }


def tool_call(id_: str, name: str, input_: dict[str, Any], *, server: bool) -> dict[str, Any]:
    """The `turn.tool_call` payload; `server` only for a tool the provider runs."""
    payload: dict[str, Any] = {"id": id_, "name": name, "input": input_}
    if server:
        payload["server"] = True
    return payload


def tool_result(block: Document, name: str) -> dict[str, Any]:
    """The `turn.tool_result` payload of a stored `tool_result` block."""
    status = block.get("status") or ("error" if block.get("is_error") else "ok")
    content = block.get("content")
    text = content if isinstance(content, str) else _text_of(content)
    preview = text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
    return {"id": block.get("tool_use_id"), "name": name, "status": status, "preview": preview}


def block_events(blocks: list[Document]) -> Iterator[tuple[EventType, dict[str, Any]]]:
    """A stored answer's blocks as the events that streamed them (for a replay)."""
    names: dict[Any, str] = {}
    for block in blocks:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            yield "turn.delta", {"text": block["text"]}
        elif kind == "thinking" and block.get("thinking"):
            yield "turn.thinking", {"text": block["thinking"]}
        elif kind in ("tool_use", "server_tool_use"):
            names[block.get("id")] = name = str(block.get("name"))
            server = kind == "server_tool_use"
            yield (
                "turn.tool_call",
                tool_call(str(block.get("id")), name, block.get("input") or {}, server=server),
            )
        elif kind == "tool_result":
            yield "turn.tool_result", tool_result(block, names.get(block.get("tool_use_id"), ""))


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
    partial = message if message and (message.get("content") or message.get("blocks")) else None
    return "turn.error", {**error, "partial": partial}


def _text_of(content: Any) -> str:
    if not isinstance(content, list):
        return ""
    return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
