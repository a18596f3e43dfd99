"""Messages API events, decoded with orjson and folded into chunks and a final message.

The layer between raw SSE (`sse.py`) and the turn engine. Text deltas become
`TextChunk`s at once, thinking deltas `ThinkingChunk`s, a `citations_delta` a
`Citation`, a `tool_use` (or `server_tool_use`) block a `ToolCall` when it
stops (its input complete and parsed), and a server tool's result block
(`web_search_tool_result`, which arrives whole) a `ServerToolResult`; every event
(signatures, citations, server tool blocks, usage, stop reason) is also folded
into the message's content blocks exactly as received, so that they can be
stored and sent back to the model unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson

from server.errors import UpstreamFailure
from server.model.base import (
    Billed,
    Chunk,
    Citation,
    Finished,
    ServerToolResult,
    TextChunk,
    ThinkingChunk,
    ToolCall,
)
from server.model.failures import failure_for
from server.prices import USAGE_FIELDS

JSON_FIELD = "partial_json"  # a tool's input, parsed when its block stops
# Deltas that append to one string field of their block.
_APPENDS = {
    "text_delta": ("text", "text"),
    "signature_delta": ("signature", "signature"),
}
# Tool blocks, and whether the provider runs them (server tools) rather than us.
TOOL_BLOCKS = {"tool_use": False, "server_tool_use": True}
# A server tool's result (`web_search_tool_result`, `web_fetch_tool_result`); our own
# `tool_result` blocks are never streamed by the model.
SERVER_RESULT_SUFFIX = "_tool_result"


class MessageAssembler:
    """One message's stream: `feed` each event's data; `finished()` at the end."""

    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        # Appended strings, joined when their block stops: never a growing copy per token.
        self._parts: dict[tuple[int, str], list[str]] = {}
        self.usage: dict[str, int] = dict.fromkeys(USAGE_FIELDS, 0)
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None

    def feed(self, data: bytes) -> Chunk | None:
        """Fold one event in; a chunk when it carried text or thinking or ended a tool call."""
        event = orjson.loads(data)
        kind = event.get("type")
        if kind == "content_block_delta":
            return self._delta(event["index"], event["delta"])
        if kind == "content_block_start":
            self._start(event["index"], event["content_block"])
        elif kind == "content_block_stop":
            return self._stop(event["index"])
        elif kind == "message_delta":
            self._message_delta(event)
        elif kind == "message_start":
            self._usage(event["message"].get("usage") or {})
            return Billed(dict(self.usage))
        elif kind == "error":
            raise stream_error(event.get("error") or {})
        return None  # ping, message_stop, and event types added later

    def finished(self) -> Finished:
        for index in {index for index, _ in self._parts}:
            self._stop(index)
        usage = self.usage
        return Finished(
            usage["input_tokens"],
            usage["output_tokens"],
            self.stop_reason,
            tuple(self.blocks),
            usage["cache_creation_input_tokens"],
            usage["cache_read_input_tokens"],
            usage["web_search_requests"],
        )

    def _delta(
        self, index: int, delta: dict[str, Any]
    ) -> TextChunk | ThinkingChunk | Citation | None:
        kind = delta.get("type")
        if kind == "text_delta":
            text: str = delta["text"]
            self._append(index, "text", text)
            return TextChunk(text) if text else None
        if kind == "thinking_delta":
            thinking: str = delta.get("thinking", "")
            self._append(index, "thinking", thinking)
            return ThinkingChunk(thinking) if thinking else None
        if kind == "input_json_delta":
            self._append(index, JSON_FIELD, delta.get("partial_json", ""))
        elif kind == "citations_delta":
            citation = delta["citation"]
            self._block(index).setdefault("citations", []).append(citation)
            return Citation(index, citation)
        elif kind in _APPENDS:
            source, target = _APPENDS[kind]
            self._append(index, target, delta.get(source, ""))
        return None

    def _append(self, index: int, field: str, text: str) -> None:
        parts = self._parts.get((index, field))
        if parts is None:
            self._block(index)
            parts = self._parts[index, field] = []
        parts.append(text)

    def _start(self, index: int, block: dict[str, Any]) -> None:
        while len(self.blocks) <= index:
            self.blocks.append({})
        self.blocks[index] = dict(block)

    def _stop(self, index: int) -> ToolCall | ServerToolResult | None:
        block = self._block(index)
        for field in [f for i, f in self._parts if i == index]:
            joined = "".join(self._parts.pop((index, field)))
            if field != JSON_FIELD:
                block[field] = block.get(field, "") + joined
                continue
            try:
                block["input"] = orjson.loads(joined) if joined else {}
            except orjson.JSONDecodeError:
                # Kept as received: the tool loop answers it with an is_error result.
                block["input"] = {}
                block["input_error"] = joined
            if not isinstance(block["input"], dict):  # valid JSON, but not an object
                block["input_error"] = joined
                block["input"] = {}
        kind = block.get("type", "")
        server = TOOL_BLOCKS.get(kind)
        if server is None:
            return ServerToolResult(block) if kind.endswith(SERVER_RESULT_SUFFIX) else None
        raw_input = block.get("input")
        return ToolCall(
            str(block.get("id", "")),
            str(block.get("name", "")),
            raw_input if isinstance(raw_input, dict) else {},
            block.get("input_error"),
            server,
        )

    def _message_delta(self, event: dict[str, Any]) -> None:
        delta = event.get("delta") or {}
        if "stop_reason" in delta:
            self.stop_reason = delta["stop_reason"]
            self.stop_sequence = delta.get("stop_sequence")
        self._usage(event.get("usage") or {})

    def _usage(self, usage: dict[str, Any]) -> None:
        """The counts a usage object gives (cumulative in the API: the last one wins)."""
        for name in USAGE_FIELDS[:4]:
            if usage.get(name) is not None:
                self.usage[name] = int(usage[name])
        searches = (usage.get("server_tool_use") or {}).get("web_search_requests")
        if searches is not None:
            self.usage["web_search_requests"] = int(searches)

    def _block(self, index: int) -> dict[str, Any]:
        if index >= len(self.blocks):  # a delta before its start: tolerate, as the SDK does
            self._start(index, {"type": "text", "text": ""})
        return self.blocks[index]


def stream_error(error: dict[str, Any]) -> UpstreamFailure:
    """An `error` event in the middle of a stream, as a domain failure."""
    kind = str(error.get("type") or "api_error")
    return failure_for(kind, None, retry_after=None)
