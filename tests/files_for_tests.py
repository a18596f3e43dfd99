"""Files the attachment tests upload, made on the spot with Pillow and pypdf."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import aiohttp
from PIL import Image
from pypdf import PdfWriter


def png(width: int, height: int, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def jpeg_rotated_with_gps(width: int, height: int) -> bytes:
    """A phone's photo: stored sideways with EXIF orientation 6, and a GPS position."""
    image = Image.new("RGB", (width, height), (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}  # GPSInfo
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def pdf(pages: int, *, password: str | None = None) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    if password is not None:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels: a decompression bomb's shape."""
    data = bytearray(png(8, 8))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def raw_form(data: bytes, filename: bytes) -> tuple[bytes, str]:
    """A multipart body written by hand: a filename aiohttp's client would refuse to send.

    `filename` is the parameter's raw text (`filename="..."` or `filename*=UTF-8''...`)."""
    boundary = "attachment-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '.encode()
        + filename
        + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def form(data: bytes, name: str, content_type: str = "application/octet-stream") -> Any:
    body = aiohttp.FormData()
    body.add_field("file", data, filename=name, content_type=content_type)
    return body
