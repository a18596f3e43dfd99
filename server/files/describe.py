"""What the offline model says it received: counted and measured from the blocks' own bytes.

Measured from what reached the model (decoded base64), not from our stored
metadata, so a test of the offline model checks the whole path, bytes included.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image
from pypdf import PdfReader


def describe_attachments(content: Any) -> str | None:
    """ "1 image, 800x600 PNG; 1 PDF, 3 pages", or None without image or document blocks."""
    if isinstance(content, str):
        return None
    images = [_image(b) for b in content if _sourced(b, "image")]
    documents = [_pages(b) for b in content if _sourced(b, "document")]
    parts = []
    if images:
        parts.append(f"{_count(len(images), 'image')}, {', '.join(images)}")
    if documents:
        pages = ", ".join(_count(n, "page") for n in documents)
        parts.append(f"{_count(len(documents), 'PDF')}, {pages}")
    return "; ".join(parts) or None


def _sourced(block: Any, kind: str) -> bool:
    return isinstance(block, dict) and block.get("type") == kind and "source" in block


def _data(block: dict[str, Any]) -> bytes:
    return base64.b64decode(block["source"]["data"])


def _image(block: dict[str, Any]) -> str:
    with Image.open(io.BytesIO(_data(block))) as image:  # the header only: no pixel decoded
        return f"{image.width}\u00d7{image.height} {image.format}"


def _pages(block: dict[str, Any]) -> int:
    return len(PdfReader(io.BytesIO(_data(block))).pages)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
