"""Decode what was uploaded, as Claude will see it: CPU work, called through `to_thread`.

Images are re-encoded at upload: the EXIF orientation applied (a phone's photo
stands up), every metadata chunk dropped (GPS, camera serials), the long edge
brought to Anthropic's 1568 px. What is stored is what is served and sent.
PDFs are kept byte for byte (Claude reads the original) once pypdf has opened
them: an encrypted, malformed or over-long one is refused here, not by Claude.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageOps
from pypdf import PdfReader

from server.errors import InvalidFile

# Pillow's format names for our media types; the processed image keeps its kind.
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
LOSSY_QUALITIES = (90, 80, 65, 50)
# A decoded image costs up to 3 bytes a pixel (150 MB at IMAGE_MAX_PIXELS): at most
# two decode at once, whatever the number of uploads, so memory stays bounded.
DECODING = threading.BoundedSemaphore(2)


@dataclass(frozen=True, slots=True)
class ImageLimits:
    long_edge: int
    max_pixels: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    data: bytes
    width: int
    height: int


def process_image(source: IO[bytes], media_type: str, limits: ImageLimits) -> ProcessedImage:
    """The image oriented, stripped and resized; `InvalidFile` for a corrupt one or a bomb."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=[FORMATS[media_type]]) as opened:
                width, height = opened.size  # from the header, before any pixel is decoded
                if width * height > limits.max_pixels:
                    raise InvalidFile(
                        f"The image is {width}x{height} pixels; the limit is "
                        f"{limits.max_pixels:,} pixels."
                    )
                opened.seek(0)  # an animated GIF or WebP: its first frame
                # A JPEG decodes straight at a fraction of its size when that is all we keep.
                opened.draft("RGB", (limits.long_edge, limits.long_edge))
                with DECODING:
                    opened.load()
                    image = ImageOps.exif_transpose(opened)
                    image.thumbnail((limits.long_edge, limits.long_edge), Image.Resampling.LANCZOS)
                    data = _encode(image, media_type, limits.max_bytes)
                return ProcessedImage(data, image.width, image.height)
    except InvalidFile:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidFile("The image decodes to too many pixels (a decompression bomb).") from None
    except (OSError, ValueError, SyntaxError, EOFError):  # UnidentifiedImageError is an OSError
        raise InvalidFile("The image is corrupt or truncated and cannot be decoded.") from None


def _encode(image: Image.Image, media_type: str, max_bytes: int) -> bytes:
    """Saved without metadata; a lossy kind steps its quality down until it fits."""
    kind = FORMATS[media_type]
    if kind == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    qualities = LOSSY_QUALITIES if kind in ("JPEG", "WEBP") else (None,)
    for quality in qualities:
        out = io.BytesIO()
        options = {"quality": quality} if quality is not None else {"optimize": True}
        image.save(out, format=kind, **options)  # no exif=, no pnginfo=: nothing carried over
        if out.tell() <= max_bytes:
            return out.getvalue()
    raise InvalidFile(f"The image is over {max_bytes:,} bytes even once resized.")


def count_pdf_pages(source: IO[bytes], max_pages: int) -> int:
    """The PDF's page count; `InvalidFile` if it is encrypted, malformed or too long."""
    try:
        reader = PdfReader(source, strict=False)
        if reader.is_encrypted:
            raise InvalidFile("The PDF is encrypted; upload a copy without a password.")
        pages = len(reader.pages)
    except InvalidFile:
        raise
    except Exception:  # pypdf raises many kinds on hostile input; all mean "unusable"
        raise InvalidFile("The PDF is malformed and cannot be read.") from None
    if pages < 1:
        raise InvalidFile("The PDF has no pages.")
    if pages > max_pages:
        raise InvalidFile(f"The PDF has {pages} pages; the limit is {max_pages}.")
    return pages
