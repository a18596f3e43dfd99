"""Attachment routes: upload, download, describe, delete. Owner-scoped like conversations."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from aiohttp import web

from server.auth import identity_of
from server.codec import json_response
from server.files.store import public_file
from server.files.uploads import upload
from server.identity import Identity
from server.typedefs import files_key, settings_key

routes = web.RouteTableDef()


@routes.post("/api/files")
async def create_file(request: web.Request) -> web.Response:
    doc = await upload(
        request, request.app[settings_key], request.app[files_key], identity_of(request)
    )
    return json_response(public_file(doc), status=201)


@routes.get("/api/files/{file_id}")
async def download_file(request: web.Request) -> web.StreamResponse:
    return await send_file(request, identity_of(request), request.match_info["file_id"])


async def send_file(
    request: web.Request, owner: Identity, file_id: str, headers: Mapping[str, str] | None = None
) -> web.StreamResponse:
    """The owner's file, streamed a chunk at a time; another's or a missing one is a 404.

    `headers` are added to (or replace) the download's own."""
    store = request.app[files_key]
    doc = await store.get(owner, file_id)
    described = public_file(doc)
    response = web.StreamResponse(
        headers={
            "Content-Type": described["media_type"],
            # Never rendered inline from our origin: a file is data, not a page of ours.
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(described['name'])}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
        }
        | dict(headers or {})
    )
    response.content_length = described["size"]
    await response.prepare(request)
    async for chunk in store.content(doc["_id"]):
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.get("/api/files/{file_id}/meta")
async def file_meta(request: web.Request) -> web.Response:
    doc = await request.app[files_key].get(identity_of(request), request.match_info["file_id"])
    return json_response(public_file(doc))


@routes.delete("/api/files/{file_id}")
async def delete_file(request: web.Request) -> web.Response:
    await request.app[files_key].delete(identity_of(request), request.match_info["file_id"])
    return web.Response(status=204)
