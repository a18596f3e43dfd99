"""The Markdown export: a conversation's current branch as a person reads it.

Thinking and tool calls are `<details>` sections (folded in GitHub, VS Code,
Obsidian and most viewers), citations footnotes (`[^1]`) listed at the end,
attachments named links to the file API (they open for their owner, signed in:
the export carries no credential, and a file's bytes do not belong in prose).
Code in a tool's input or result is fenced with a fence longer than any run
of backticks inside it, so nothing the model wrote can close it early.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from server.sharing.reading import (
    Attachment,
    Notes,
    Part,
    Redacted,
    Text,
    Thinking,
    ToolCall,
    parts_of,
)
from server.storage.client import Document

ROLES = {"user": "You", "assistant": "Assistant"}
BACKTICKS = re.compile(r"`+")


def conversation_markdown(
    conversation: Document, branch: Iterable[Document], files_url: str = "/api/files/"
) -> str:
    """`files_url` + a file's id is where its link points (absolute, so it works outside)."""
    notes = Notes()
    title = str(conversation.get("title") or "Untitled conversation")
    lines = [f"# {_one_line(title)}", ""]
    made = conversation.get("created_at")
    lines += [f"*{conversation.get('model')} · {made:%Y-%m-%d %H:%M} UTC*" if made else "", ""]
    for message in branch:
        lines += [f"## {ROLES.get(str(message.get('role')), 'Message')}", ""]
        for part in parts_of(message, notes):
            lines += [*_part(part, files_url), ""]
        if message.get("status") not in (None, "complete"):
            lines += [f"*({message['status']})*", ""]
    for note in notes.found:
        quote = f': "{_one_line(note.cited_text)}"' if note.cited_text else ""
        lines.append(f"[^{note.number}]: [{_one_line(note.title)}]({note.url}){quote}")
    return "\n".join(lines).rstrip() + "\n"


def _part(part: Part, files_url: str) -> list[str]:
    if isinstance(part, Attachment):
        label = _link_text(
            f"{part.name} ({', '.join(filter(None, [part.media_type, part.detail]))})"
        )
        return [f"📎 [{label}]({files_url}{part.file_id})"]
    if isinstance(part, Text):
        marks = "".join(f"[^{n}]" for n in part.notes)
        return [part.text.rstrip() + marks]
    if isinstance(part, Thinking):
        return _details("Thinking", [part.text.strip()])
    if isinstance(part, Redacted):
        return ["*Some reasoning was redacted.*"]
    assert isinstance(part, ToolCall)
    body = ["Input:", "", *_fenced(part.input, "json")]
    if part.result is not None:
        body += ["", f"Result ({part.status}):", "", *_fenced(part.result, "")]
    return _details(f"Tool call: {part.name}", body)


def _details(summary: str, body: list[str]) -> list[str]:
    return ["<details>", f"<summary>{_one_line(summary)}</summary>", "", *body, "", "</details>"]


def _fenced(text: str, lang: str) -> list[str]:
    longest = max((len(run) for run in BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{lang}", text, fence]


def _link_text(text: str) -> str:
    """A file's name inside `[...]`: one line, its brackets and backslashes escaped."""
    return re.sub(r"([\\\[\]])", r"\\\1", _one_line(text))


def _one_line(text: str) -> str:
    return " ".join(text.split())
