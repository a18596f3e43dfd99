"""What the share page shows: a snapshot's messages as HTML-ready parts.

Answers' text goes through the page's Markdown rules (`html_markdown`), a
user's text and the model's thinking are shown as typed; everything else is
left to the template's autoescaping. Nothing from the conversation reaches
the page unescaped, and the page's policy allows no script at all.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from server.sharing.html_inline import safe_href
from server.sharing.html_markdown import render_markdown
from server.sharing.reading import (
    Attachment,
    Notes,
    Part,
    Redacted,
    Text,
    Thinking,
    parts_of,
)
from server.storage.client import Document

ROLES = {"user": "You", "assistant": "Assistant"}


def page_context(share: Document, files_url: str) -> dict[str, Any]:
    """`files_url` + a file's id serves an attachment through this share's token."""
    notes = Notes()
    messages = [
        {
            "role": str(message.get("role")),
            "label": ROLES.get(str(message.get("role")), "Message"),
            "status": message.get("status"),
            "parts": [
                _part(p, message.get("role") == "user", files_url) for p in parts_of(message, notes)
            ],
        }
        for message in share.get("messages", ())
    ]
    return {
        "title": share.get("title") or "Shared conversation",
        "model": share.get("model"),
        "created_at": share.get("created_at"),
        "messages": messages,
        "notes": [
            {
                "number": n.number,
                "title": n.title,
                "cited_text": n.cited_text,
                "href": safe_href(n.url),
            }
            for n in notes.found
        ],
    }


def _part(part: Part, typed: bool, files_url: str) -> dict[str, Any]:
    if isinstance(part, Attachment):
        return {
            "kind": "image" if part.is_image else "file",
            "name": part.name,
            "detail": part.detail,
            "url": files_url + part.file_id,
        }
    if isinstance(part, Text):
        html = None if typed else Markup(render_markdown(part.text))
        return {"kind": "text", "text": part.text, "html": html, "notes": part.notes}
    if isinstance(part, Thinking):
        return {"kind": "thinking", "text": part.text}
    if isinstance(part, Redacted):
        return {"kind": "redacted"}
    return {
        "kind": "tool",
        "name": part.name,
        "input": part.input,
        "result": part.result,
        "status": part.status,
    }
