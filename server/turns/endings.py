"""How a turn is told to clients: one builder for live turns and replays.

A live turn and a turn rebuilt from storage must start, use tools and end
with the same events, so both build them here, from the turn, its blocks and
its answer as stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from server.events import EventType
from server.model.assembler import SERVER_RESULT_SUFFIX
from server.storage.client import Document
from server.storage.conversations import public_message
from server.storage.turn_records import INTERRUPTED
from server.storage.usage import whole_usage, zero_usage

PREVIEW_CHARS = 200
# What a client is told of a citation; the rest (`encrypted_index`) is for the model only.
CITATION_FIELDS = (
    "type",
    "url",
    "title",
    "cited_text",
    # Into an attached PDF (`page_location`) or text (`char_location`).
    "document_index",
    "document_title",
    "start_page_number",
    "end_page_number",
    "start_char_index",
    "end_char_index",
)


def started(turn: Document) -> dict[str, Any]:
    """The `turn.started` payload."""
    return {
        "conversation_id": turn["conversation_id"],
        "user_message_id": turn.get("user_message_id"),
        "assistant_message_id": turn.get("assistant_message_id"),
        "parent_message_id": turn.get("parent_message_id"),
        "regenerate_message_id": turn.get("regenerate_message_id"),
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
    return {"id": block.get("tool_use_id"), "name": name, "status": status, "preview": _cut(text)}


def server_tool_result(block: Document) -> dict[str, Any]:
    """The `turn.tool_result` payload of a server tool's result block (`web_search_tool_result`).

    An error inside the block (`{"type": "web_search_tool_result_error", "error_code": ...}`)
    is status `error` with its code; otherwise the preview lists the sources.
    """
    content = block.get("content")
    code = content.get("error_code") if isinstance(content, dict) else None
    return {
        "id": block.get("tool_use_id"),
        "name": str(block.get("type", "")).removesuffix(SERVER_RESULT_SUFFIX),
        "status": "error" if code else "ok",
        "preview": _cut(f"error: {code}" if code else _sources(content)),
        "server": True,
    }


def citation(block: int, cited: Document) -> dict[str, Any]:
    """The `turn.citation` payload: a source for the text block at `block` of the answer."""
    return {"block": block, "citation": {k: cited[k] for k in CITATION_FIELDS if k in cited}}


def block_events(blocks: list[Document]) -> Iterator[tuple[EventType, dict[str, Any]]]:
    """A stored answer's blocks as the events that streamed them (for a replay)."""
    names: dict[Any, str] = {}
    for index, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            for cited in block.get("citations") or ():  # before the text, as streamed
                yield "turn.citation", citation(index, cited)
            if block.get("text"):
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
        elif isinstance(kind, str) and kind.endswith(SERVER_RESULT_SUFFIX):
            yield "turn.tool_result", server_tool_result(block)


def ending(turn: Document, answer: Document | None) -> tuple[EventType, dict[str, Any]]:
    """The terminal event's type and payload, from the turn's stored status."""
    message = public_message(answer) if answer else None
    status = turn["status"]
    if status == "complete" and answer is not None:
        payload = {
            "message": message,
            "usage": whole_usage(answer.get("usage")) or zero_usage(),
            "stop_reason": answer.get("stop_reason"),
        }
        return "turn.done", payload
    if status == "cancelled":
        return "turn.cancelled", {"message": message}
    error = turn.get("error") or INTERRUPTED
    partial = message if message and (message.get("content") or message.get("blocks")) else None
    return "turn.error", {**error, "partial": partial}


def _cut(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _sources(content: Any) -> str:
    """Titles and URLs of a search's results (a list) or of a fetched page (one result)."""
    results = content if isinstance(content, list) else [content]
    found = []
    for result in results:
        if not isinstance(result, dict):
            continue
        document = result.get("content")
        title = result.get("title") or (
            document.get("title") if isinstance(document, dict) else None
        )
        url = result.get("url") or ""
        found.append(f"{title} ({url})" if title else str(url))
    return "; ".join(found)


def _text_of(content: Any) -> str:
    if not isinstance(content, list):
        return ""
    return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
