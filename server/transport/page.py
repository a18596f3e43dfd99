"""The bundled page: one template, its settings, and the static files beside it."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from server import __version__
from server.typedefs import settings_key

routes = web.RouteTableDef()


@routes.get("/")
@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, object]:
    settings = request.app[settings_key]
    return {
        "dev_signin": settings.dev_signin,
        "default_model": settings.default_model,
        "static_url": "/static/",
        "app_version": __version__,
    }
