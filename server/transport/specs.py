"""The machine-readable contract: OpenAPI and AsyncAPI, public like the docs they are."""

from __future__ import annotations

from aiohttp import web

from server.forwarded import client_host, client_scheme
from server.typedefs import documents_key, settings_key

OPENAPI_PATH = "/api/openapi.json"
ASYNCAPI_PATH = "/api/asyncapi.json"
# They describe the API and disclose no data, so client generators may fetch them unsigned.
PUBLIC_PATHS = frozenset({OPENAPI_PATH, ASYNCAPI_PATH})

routes = web.RouteTableDef()


@routes.get(OPENAPI_PATH)
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[documents_key].openapi, content_type="application/json")


@routes.get(ASYNCAPI_PATH)
async def asyncapi(request: web.Request) -> web.Response:
    """Its servers are where the client reached it (behind a trusted proxy: the host and
    scheme the proxy was asked for), so a tool reading it connects to the right place."""
    settings = request.app[settings_key]
    host = client_host(request, settings.trusted_proxies) or f"{settings.host}:{settings.port}"
    secure = client_scheme(request, settings.trusted_proxies) == "https"
    body = request.app[documents_key].asyncapi(host, secure=secure)
    return web.Response(body=body, content_type="application/json")
