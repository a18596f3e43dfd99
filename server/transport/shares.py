"""Share links: made, listed and revoked by their owner; read by anyone holding the link.

`GET /s/{token}` and `GET /api/shares/{token}` are the only public reads
(`PUBLIC_READS`); everything else needs the owner's token. With `SHARING=off`
every route here is a 404, as if sharing did not exist.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from server import __version__
from server.auth import identity_of
from server.codec import json_response
from server.errors import NotFound
from server.forwarded import public_origin
from server.sharing.reading import shared_file_owner, with_file_urls
from server.sharing.share_page import page_context
from server.storage.shares import Shares, public_share, public_snapshot
from server.transport.files import send_file
from server.transport.page import STATIC_URL
from server.transport.rest import path_id
from server.typedefs import settings_key, store_key

routes = web.RouteTableDef()

SHARE_PAGE = "/s/"
PUBLIC_READS = (SHARE_PAGE, "/api/shares/")
MAX_TOKEN_CHARS = 256
# No script at all: the page is HTML and the two style sheets.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)
PRIVATE = {"X-Robots-Tag": "noindex, nofollow", "Cache-Control": "no-store"}


def shares(request: web.Request) -> Shares:
    if not request.app[settings_key].sharing:
        raise NotFound("Sharing is off on this service (SHARING=off)")
    store = request.app[store_key]
    return Shares(store.db, store)


@routes.post("/api/conversations/{id}/shares")
async def create_share(request: web.Request) -> web.Response:
    share, token = await shares(request).create(identity_of(request), path_id(request))
    origin = public_origin(request, request.app[settings_key].trusted_proxies)
    url = f"{origin}{SHARE_PAGE}{token}"
    body = {"id": share["_id"], "url": url, "created_at": share["created_at"]}
    return json_response(body, status=201)


@routes.get("/api/conversations/{id}/shares")
async def list_shares(request: web.Request) -> web.Response:
    found = await shares(request).of_conversation(identity_of(request), path_id(request))
    return json_response({"items": [public_share(doc) for doc in found]})


@routes.delete("/api/shares/{id}")
async def revoke_share(request: web.Request) -> web.Response:
    await shares(request).revoke(identity_of(request), path_id(request))
    return web.Response(status=204)


@routes.get("/api/shares/{id}")
async def shared_json(request: web.Request) -> web.Response:
    """`{id}` is the link's token here (one path, so one OpenAPI path with DELETE)."""
    token = _token(request, "id")
    share = await shares(request).by_token(token)
    response = json_response(with_file_urls(public_snapshot(share), _files_url(token)))
    response.headers.update(PRIVATE)
    return response


@routes.get("/s/{token}")
async def shared_page(request: web.Request) -> web.Response:
    """Server-rendered, read-only; an unknown, revoked or made-up link is the same 404 page."""
    context = {"found": False, "static_url": STATIC_URL, "app_version": __version__}
    status = 200
    try:
        token = _token(request)
        share = await shares(request).by_token(token)
        context |= {"found": True, **page_context(share, _files_url(token))}
    except NotFound:
        status = 404
    response = aiohttp_jinja2.render_template("share.html", request, context, status=status)
    response.headers.update(PRIVATE)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@routes.get("/s/{token}/files/{file_id}")
async def shared_file(request: web.Request) -> web.StreamResponse:
    """An attachment of the snapshot, through its link only; revoked with it."""
    file_id = request.match_info["file_id"]
    owner = shared_file_owner(await shares(request).by_token(_token(request)), file_id)
    # Not kept by the browser: a revoked link's files must stop showing with it.
    return await send_file(request, owner, file_id, PRIVATE)


def _files_url(token: str) -> str:
    return f"{SHARE_PAGE}{token}/files/"


def _token(request: web.Request, name: str = "token") -> str:
    """Hashed and looked up whatever it is (a link of the right shape or not): the same work."""
    return request.match_info[name][:MAX_TOKEN_CHARS]
