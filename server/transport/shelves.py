"""REST views of the conversation list: filtered pages, and the projects and tags to filter by."""

from __future__ import annotations

from aiohttp import web

from server.auth import identity_of
from server.codec import json_response
from server.schemas import MAX_PROJECT_CHARS, MAX_TAG_CHARS, normal_tag
from server.storage.conversations import public_conversation
from server.storage.shelves import ListFilter
from server.transport.rest import invalid_query, query_bool, query_int
from server.typedefs import store_key

routes = web.RouteTableDef()

MAX_CURSOR_CHARS = 512


@routes.get("/api/conversations")
async def list_conversations(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", default=20, minimum=1, maximum=100)
    cursor = request.query.get("cursor") or None
    if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
        raise invalid_query("cursor", "is longer than any cursor this service issues")
    docs, next_cursor = await request.app[store_key].list_conversations(
        identity_of(request), list_filter(request), limit=limit, cursor=cursor
    )
    return json_response(
        {"items": [public_conversation(d) for d in docs], "next_cursor": next_cursor}
    )


@routes.get("/api/projects")
async def projects(request: web.Request) -> web.Response:
    archived = query_bool(request, "archived", default=False)
    found = await request.app[store_key].projects(identity_of(request), archived=archived)
    return json_response({"items": found})


@routes.get("/api/tags")
async def tags(request: web.Request) -> web.Response:
    archived = query_bool(request, "archived", default=False)
    found = await request.app[store_key].tags(identity_of(request), archived=archived)
    return json_response({"items": found})


def list_filter(request: web.Request) -> ListFilter:
    """The query's filters; a tag is compared as stored (normalised), a project trimmed."""
    project = request.query.get("project", "").strip() or None
    if project is not None and len(project) > MAX_PROJECT_CHARS:
        raise invalid_query("project", f"is at most {MAX_PROJECT_CHARS} characters")
    tag = normal_tag(request.query.get("tag", "")) or None
    if tag is not None and len(tag) > MAX_TAG_CHARS:
        raise invalid_query("tag", f"is at most {MAX_TAG_CHARS} characters")
    pinned = query_bool(request, "pinned", default=False) if request.query.get("pinned") else None
    unfiled = query_bool(request, "unfiled", default=False)
    if unfiled and project is not None:
        raise invalid_query("unfiled", "cannot be true with a project: choose one")
    return ListFilter(
        archived=query_bool(request, "archived", default=False),
        project=project,
        tag=tag,
        pinned=pinned,
        unfiled=unfiled,
    )
