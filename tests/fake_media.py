"""The fake API's checks of image and document blocks, as the real Messages API makes them.

Documented limits: images `image/jpeg|png|gif|webp`, at most 5 MB each and
8000 px a side, their bytes of the type they claim; PDFs `application/pdf`,
at most 32 MB; base64 must be valid; `citations` is `{"enabled": bool}`.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from PIL import Image

IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
IMAGE_MAX_BYTES = 5 * 1024 * 1024
IMAGE_MAX_SIDE = 8000
PDF_MAX_BYTES = 32 * 1024 * 1024
MAX_IMAGES = 100


def check_media(messages: list[dict[str, Any]]) -> str | None:
    """What the API would refuse in the messages' image/document blocks; None when valid."""
    images = 0
    for number, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, str):
            continue
        for block in content or []:
            kind = block.get("type")
            if kind == "image":
                images += 1
                problem = _check_image(block)
            elif kind == "document":
                problem = _check_document(block)
            else:
                continue
            if problem is not None:
                return f"messages.{number}.content: {problem}"
            if message.get("role") != "user":
                return f"messages.{number}: {kind} blocks are only allowed in user messages"
    if images > MAX_IMAGES:
        return f"too many images: {images} (at most {MAX_IMAGES})"
    return None


def _decoded(source: dict[str, Any]) -> bytes | str:
    if source.get("type") != "base64":
        return f"source.type {source.get('type')!r} is not supported by this fake"
    try:
        return base64.b64decode(str(source.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        return "source.data: invalid base64 data"


def _check_image(block: dict[str, Any]) -> str | None:
    source = block.get("source") or {}
    media_type = source.get("media_type")
    if media_type not in IMAGE_TYPES:
        return f"image.source.media_type: {media_type!r} is not one of {sorted(IMAGE_TYPES)}"
    data = _decoded(source)
    if isinstance(data, str):
        return f"image.{data}"
    if len(data) > IMAGE_MAX_BYTES:
        return f"image exceeds 5 MB maximum: {len(data)} bytes"
    try:
        with Image.open(io.BytesIO(data)) as image:
            found, size = image.format, image.size
    except OSError:
        return "image: could not process image"
    if found != IMAGE_TYPES[media_type]:
        return f"image: the data is {found}, not the specified media type {media_type}"
    if max(size) > IMAGE_MAX_SIDE:
        return f"image dimensions exceed max allowed size: {size[0]}x{size[1]} pixels"
    return None


def _check_document(block: dict[str, Any]) -> str | None:
    source = block.get("source") or {}
    if source.get("media_type") != "application/pdf":
        return f"document.source.media_type: {source.get('media_type')!r} is not application/pdf"
    data = _decoded(source)
    if isinstance(data, str):
        return f"document.{data}"
    if len(data) > PDF_MAX_BYTES:
        return f"document exceeds 32 MB maximum: {len(data)} bytes"
    if not data.startswith(b"%PDF-"):
        return "document: the PDF specified was not valid"
    citations = block.get("citations")
    if citations is not None and (
        not isinstance(citations, dict) or not isinstance(citations.get("enabled"), bool)
    ):
        return "document.citations: must be an object with a boolean `enabled`"
    return None
