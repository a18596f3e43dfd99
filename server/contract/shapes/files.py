"""The shapes of the attachment routes (`/api/files`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from server.contract.shapes.base import Shape, omittable
from server.files.kinds import ACCEPTED

MediaType = Literal["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"]
assert set(get_args(MediaType)) == set(ACCEPTED)


class FileInfo(Shape):
    """An uploaded file, as stored (an image: after processing)."""

    id: str
    name: str = Field(description="A safe display name: no path, no control characters")
    media_type: MediaType = Field(description="From the file's bytes, never its name")
    size: int = Field(ge=1, description="Bytes as stored and served")
    width: int | SkipJsonSchema[None] = omittable("An image's width in pixels, after resizing")
    height: int | SkipJsonSchema[None] = omittable("An image's height in pixels, after resizing")
    pages: int | SkipJsonSchema[None] = omittable("A PDF's page count")
    created_at: datetime
