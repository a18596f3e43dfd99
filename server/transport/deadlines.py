"""Every request's database work within `STORAGE_TIMEOUT_SECONDS`, at the HTTP edge.

The streaming routes are left out: a turn outlives its request, and its start
is bounded inside the engine, around the reads and claims only.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from server.typedefs import deadline_key

STREAMING = {
    ("POST", "/api/turns"),
    ("GET", "/api/turns/{turn_id}/events"),
    ("GET", "/api/export"),  # every conversation, as long as the client reads
    # A large document uploads at the client's pace; its writes have their own deadline.
    ("POST", "/api/conversations/import"),
    # An upload or a download lasts as long as the client's connection, not a database call.
    ("POST", "/api/files"),
    ("GET", "/api/files/{file_id}"),
}


@web.middleware
async def deadline_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    route = (request.method, resource.canonical if resource is not None else "")
    if not request.path.startswith("/api/") or route in STREAMING:
        return await handler(request)
    async with request.app[deadline_key]():
        return await handler(request)
