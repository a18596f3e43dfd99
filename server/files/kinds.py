"""What a file is, by its first bytes; and the name it may be shown under.

The name and the browser's Content-Type are the uploader's word: only the
magic bytes decide, so an executable renamed `.png` is refused (415).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
PDF = "application/pdf"
ACCEPTED = (*IMAGE_TYPES, PDF)
# How many leading bytes `sniff` needs.
HEAD_BYTES = 16
MAX_NAME_CHARS = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


def sniff(head: bytes) -> str | None:
    """The media type the file's signature says, or None for any kind we do not take."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return PDF
    return None


def is_image(media_type: str) -> bool:
    return media_type in IMAGE_TYPES


def safe_name(name: str | None, media_type: str) -> str:
    """A display name without paths, control characters or bidi tricks; never empty.

    `../../etc/passwd` is shown as `passwd`: the last path segment is what the
    user chose; the rest only ever helps an attacker."""
    # Percent-escapes undone first: browsers escape `"` and newlines so, aiohttp's client
    # escapes everything, and an escaped `../` or control character must not slip past.
    raw = unicodedata.normalize("NFC", unquote(name or ""))
    raw = raw.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        ch for ch in _UNSAFE.sub("", raw) if unicodedata.category(ch) not in ("Cf", "Cc")
    )
    cleaned = cleaned.strip().lstrip(".").strip()[:MAX_NAME_CHARS]
    return cleaned or f"attachment.{extension(media_type)}"


def extension(media_type: str) -> str:
    return {"image/jpeg": "jpg", PDF: "pdf"}.get(media_type, media_type.rsplit("/", 1)[-1])
