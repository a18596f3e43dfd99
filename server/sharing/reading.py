"""A message as a person reads it: the parts an export or a share page shows, in order.

One reading for both outputs, so the Markdown export and the share page
agree: the answer's text with its citations as numbered notes, thinking and
tool calls (each call joined with its result) as parts a reader may open,
and a question's attachments by name (each output links them its own way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from server.errors import NotFound
from server.files.blocks import is_reference
from server.identity import Identity
from server.storage.client import Document

TOOL_CALLS = {"tool_use", "server_tool_use"}
TOOL_RESULTS = {"tool_result", "web_search_tool_result", "web_fetch_tool_result"}


@dataclass(frozen=True)
class Text:
    text: str
    notes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Thinking:
    text: str


@dataclass(frozen=True)
class Redacted:
    pass


@dataclass(frozen=True)
class ToolCall:
    name: str
    input: str
    result: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A file the user attached: named, never inlined (its bytes stay in the file store)."""

    file_id: str
    name: str
    media_type: str
    detail: str

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")


@dataclass(frozen=True)
class Note:
    number: int
    url: str
    title: str
    cited_text: str


type Part = Text | Thinking | Redacted | ToolCall | Attachment


@dataclass
class Notes:
    """The citations met so far, numbered once each across the whole conversation."""

    found: list[Note] = field(default_factory=list)
    _numbers: dict[tuple[str, str], int] = field(default_factory=dict)

    def number(self, citation: dict[str, Any]) -> int:
        url, cited = str(citation.get("url") or ""), str(citation.get("cited_text") or "")
        key = (url, cited)
        if key not in self._numbers:
            self._numbers[key] = len(self.found) + 1
            title = str(citation.get("title") or url or "source")
            self.found.append(Note(self._numbers[key], url, title, cited))
        return self._numbers[key]


def parts_of(message: Document, notes: Notes) -> list[Part]:
    """The message's parts. A question is its files (above, as the page shows them), then its
    text: its blocks are only its files' references, its words are in `content`."""
    blocks = message.get("blocks") or []
    if message.get("role") == "user" or not blocks:
        files: list[Part] = [_attachment(block) for block in blocks if is_reference(block)]
        text = str(message.get("content") or "")
        return [*files, Text(text)] if text else files
    results = {
        str(block.get("tool_use_id")): block
        for block in blocks
        if isinstance(block, dict) and block.get("type") in TOOL_RESULTS
    }
    parts: list[Part] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            cited = tuple(
                notes.number(c) for c in block.get("citations") or () if isinstance(c, dict)
            )
            parts.append(Text(str(block.get("text") or ""), cited))
        elif kind == "thinking":
            parts.append(Thinking(str(block.get("thinking") or "")))
        elif kind == "redacted_thinking":
            parts.append(Redacted())
        elif kind in TOOL_CALLS:
            result = results.get(str(block.get("id")))
            parts.append(_call(block, result))
    return _merged(parts)


def shared_file_owner(share: Document, file_id: str) -> Identity:
    """Whose file to read, when the share's snapshot names it; anything else is not found.

    The link is the only key: a file's id alone, even a shared file's, opens nothing."""
    named = {
        str(block["file_id"])
        for message in share.get("messages") or ()
        for block in message.get("blocks") or ()
        if is_reference(block)
    }
    if file_id not in named:
        raise NotFound(f"No file {file_id!r} in this share")
    return Identity(tenant_id=share["tenant_id"], user_id=share["user_id"])


def with_file_urls(snapshot: Document, files_url: str) -> Document:
    """The snapshot with each attachment's `url` (`files_url` + its id): the link's own route."""
    return {**snapshot, "messages": [_linked(m, files_url) for m in snapshot["messages"]]}


def _linked(message: Document, files_url: str) -> Document:
    blocks = message.get("blocks")
    if not blocks or not any(is_reference(b) for b in blocks):
        return message
    linked = [{**b, "url": files_url + str(b["file_id"])} if is_reference(b) else b for b in blocks]
    return {**message, "blocks": linked}


def _attachment(block: Document) -> Attachment:
    if block.get("width") and block.get("height"):
        detail = f"{block['width']}\N{MULTIPLICATION SIGN}{block['height']}"
    elif block.get("pages"):
        detail = f"{block['pages']} page{'s' if block['pages'] != 1 else ''}"
    else:
        detail = ""
    return Attachment(
        str(block["file_id"]), str(block.get("name") or "file"), str(block["media_type"]), detail
    )


def _call(call: Document, result: Document | None) -> ToolCall:
    given = orjson.dumps(call.get("input"), option=orjson.OPT_INDENT_2).decode()
    if result is None:
        return ToolCall(str(call.get("name") or "tool"), given)
    status = result.get("status") or ("error" if result.get("is_error") else "ok")
    return ToolCall(str(call.get("name") or "tool"), given, _result_text(result), str(status))


def _result_text(result: Document) -> str:
    content = result.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # web search: its sources; other block lists: their text
        lines = []
        for item in content:
            if not isinstance(item, dict):
                continue
            if item.get("url"):
                lines.append(f"{item.get('title') or item['url']} ({item['url']})")
            elif item.get("text"):
                lines.append(str(item["text"]))
            elif item.get("error_code"):
                lines.append(f"error: {item['error_code']}")
        return "\n".join(lines)
    if isinstance(content, dict):
        if content.get("error_code"):
            return f"error: {content['error_code']}"
        return str(content.get("url") or orjson.dumps(content).decode())
    return ""


def _merged(parts: list[Part]) -> list[Part]:
    """Consecutive text blocks as one text (an answer split around its citations)."""
    merged: list[Part] = []
    for part in parts:
        last = merged[-1] if merged else None
        if isinstance(part, Text) and isinstance(last, Text) and not last.notes:
            merged[-1] = Text(last.text + part.text, part.notes)
        else:
            merged.append(part)
    return merged
