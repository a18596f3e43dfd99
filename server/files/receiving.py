"""An upload read as it streams in: a chunk at a time to a temporary file, under its limit.

Nothing holds the whole body in memory, and a body over the limit is refused
(413) as soon as its declared length says so, or as soon as that many bytes
have arrived, not after it has all been read.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from typing import IO

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from server.errors import BadRequest, PayloadTooLarge, ValidationFailed

READ_BYTES = 64 * 1024
FLUSH_BYTES = 256 * 1024  # written to disk (off the loop) a quarter megabyte at a time
# The multipart envelope around the file: boundaries, headers, a small field or two.
ENVELOPE_BYTES = 64 * 1024
FIELD = "file"


@dataclass
class Received:
    file: IO[bytes]
    size: int
    name: str | None

    def close(self) -> None:
        self.file.close()


async def receive_upload(request: web.Request, limit: int) -> Received:
    """The multipart field `file`, spooled to a temporary file; 413 past `limit` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit + ENVELOPE_BYTES:
        raise _too_large(limit)
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise _not_multipart() from None
    while True:
        try:
            part = await reader.next()
        except BadHttpMessage:  # a part's headers aiohttp refuses (control characters)
            raise BadRequest(
                "The multipart body is malformed: a part's headers are invalid."
            ) from None
        if part is None:
            raise ValidationFailed(
                "No file in the upload.", [{"field": FIELD, "message": "field required"}]
            )
        if isinstance(part, BodyPartReader) and part.name == FIELD:
            return await _spool(part, limit)
        await _skip(part, limit)


async def _spool(part: BodyPartReader, limit: int) -> Received:
    spooled = tempfile.TemporaryFile()  # noqa: SIM115 (handed to the caller, who closes it)
    size, pending = 0, bytearray()
    try:
        while chunk := await part.read_chunk(READ_BYTES):
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            pending += chunk
            if len(pending) >= FLUSH_BYTES:
                await asyncio.to_thread(spooled.write, pending)  # awaited: never changed meanwhile
                pending.clear()
        await asyncio.to_thread(spooled.write, pending)
        spooled.seek(0)
    except BaseException:
        spooled.close()
        raise
    return Received(spooled, size, part.filename)


async def _skip(part: object, limit: int) -> None:
    """Another field before the file: read and dropped, counted against the same limit."""
    if not isinstance(part, BodyPartReader):
        raise _not_multipart()
    size = 0
    while chunk := await part.read_chunk(READ_BYTES):
        size += len(chunk)
        if size > ENVELOPE_BYTES:
            raise _too_large(limit)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The upload is over the limit of {limit:,} bytes (UPLOAD_MAX_BYTES).")


def _not_multipart() -> ValidationFailed:
    return ValidationFailed(
        "Send the file as multipart/form-data in the field `file`.",
        [{"field": FIELD, "message": "multipart/form-data expected"}],
    )
