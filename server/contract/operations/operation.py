"""What an OpenAPI operation is, and the parameters the tables share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
TURN_ID = ID | {"name": "turn_id"}
FILE_ID = ID | {"name": "file_id"}
TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema} | {
        "description": description
    }


ARCHIVED = query("archived", {"type": "boolean", "default": False}, "Archived ones instead")
LIMIT = {"type": "integer", "minimum": 1}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    status: int = 200
    reply: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    public: bool = False
    stream: bool = False  # the reply is an SSE stream
    text: str = ""  # the reply is plain text, described so
    media: tuple[tuple[str, str], ...] = ()  # other media types of the reply, described
    page: bool = False  # a page: its errors are pages too (text/html), not problems
    # The reply is a request's shape (the export is what the import reads): exact, versioned.
    reply_mode: JsonSchemaMode = "serialization"
    parameters: tuple[dict[str, Any], ...] = ()
    upload: bool = False  # the body is multipart/form-data with a `file` field
    binary: tuple[str, ...] = ()  # the reply is the bytes of one of these media types
