"""The machine-readable contract: OpenAPI and AsyncAPI, public like the docs they are."""

from __future__ import annotations

from aiohttp import web

from server.typedefs import documents_key

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
    return web.Response(body=request.app[documents_key].asyncapi, content_type="application/json")
