"""Attachments: uploaded, downloaded, described, deleted."""

from __future__ import annotations

from server.contract.operations.operation import FILE_ID, Operation
from server.contract.shapes.files import FileInfo
from server.files.kinds import ACCEPTED

FILES = (
    Operation(
        "post",
        "/api/files",
        "Upload an image (PNG, JPEG, GIF, WebP) or a PDF to attach to a message",
        status=201,
        reply=FileInfo,
        upload=True,
        errors=(400, 413, 415, 422),
    ),
    Operation(
        "get",
        "/api/files/{file_id}",
        "The file's bytes (an attachment download, never rendered inline)",
        binary=ACCEPTED,
        errors=(404,),
        parameters=(FILE_ID,),
    ),
    Operation(
        "get",
        "/api/files/{file_id}/meta",
        "What the file is",
        reply=FileInfo,
        errors=(404,),
        parameters=(FILE_ID,),
    ),
    Operation(
        "delete",
        "/api/files/{file_id}",
        "Delete a file (messages that used it then show it as deleted)",
        status=204,
        errors=(404,),
        parameters=(FILE_ID,),
    ),
)
