"""One upload from request to stored file: received, sniffed, processed off the loop, stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

from aiohttp import web

from server.config import Settings
from server.errors import InvalidFile, UnsupportedFileType
from server.files.kinds import HEAD_BYTES, PDF, is_image, safe_name, sniff
from server.files.processing import ImageLimits, count_pdf_pages, process_image
from server.files.receiving import Received, receive_upload
from server.files.store import CHUNK_BYTES, FileStore, NewFile
from server.identity import Identity
from server.storage.client import Document


@dataclass(frozen=True, slots=True)
class Prepared:
    new: NewFile
    data: bytes | None  # a processed image; None: the received bytes as they are (a PDF)


async def upload(
    request: web.Request, settings: Settings, store: FileStore, identity: Identity
) -> Document:
    received = await receive_upload(request, settings.upload_max_bytes)
    try:
        # Decoding is CPU work of up to a second: on a thread, so other users' turns stream on.
        prepared = await asyncio.to_thread(prepare, received, settings)
        chunks = (
            _bytes_chunks(prepared.data)
            if prepared.data is not None
            else _file_chunks(received.file)
        )
        return await store.save(identity, prepared.new, chunks)
    finally:
        received.close()


def prepare(received: Received, settings: Settings) -> Prepared:
    """What the bytes are, checked and processed; a refusal raises (415 or 422)."""
    if received.size == 0:
        raise InvalidFile("The file is empty (zero bytes).")
    file = received.file
    media_type = sniff(file.read(HEAD_BYTES))
    file.seek(0)
    if media_type is None:
        raise UnsupportedFileType(
            "Only PNG, JPEG, GIF and WebP images and PDF documents are accepted "
            "(judged by the file's bytes, not its name)."
        )
    name = safe_name(received.name, media_type)
    if is_image(media_type):
        limits = ImageLimits(
            settings.image_long_edge, settings.image_max_pixels, settings.image_max_bytes
        )
        image = process_image(file, media_type, limits)
        return Prepared(NewFile(name, media_type, image.width, image.height), image.data)
    assert media_type == PDF
    pages = count_pdf_pages(file, settings.pdf_max_pages)
    file.seek(0)
    return Prepared(NewFile(name, media_type, pages=pages), None)


async def _bytes_chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK_BYTES):
        yield data[start : start + CHUNK_BYTES]


async def _file_chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
        yield chunk
