"""The bundled page: one template, its settings, its security policy, and the static files."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web

from server import __version__
from server.forwarded import client_host
from server.typedefs import settings_key

routes = web.RouteTableDef()

STATIC_URL = "/static/"
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
# A host the policy may name: a DNS name or bracketed IPv6 literal, with an optional port.
PLAIN_HOST = re.compile(r"(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?", re.IGNORECASE)


def import_map(version: str) -> str:
    """The modules import each other as "./x.js": each maps to its versioned URL, so a new
    release is never mixed with cached modules of the old one."""
    modules = sorted(path.name for path in STATIC_DIR.glob("*.js"))
    return json.dumps(
        {"imports": {f"{STATIC_URL}{name}": f"{STATIC_URL}{name}?v={version}" for name in modules}}
    )


IMPORT_MAP = import_map(__version__)
# The one inline script, allowed by its hash: no 'unsafe-inline', so injected markup cannot run.
IMPORT_MAP_DIGEST = base64.b64encode(hashlib.sha256(IMPORT_MAP.encode()).digest()).decode()
IMPORT_MAP_SOURCE = f"'sha256-{IMPORT_MAP_DIGEST}'"


def page_policy(host: str | None) -> str:
    # 'self' covers same-host ws:/wss: in CSP 3; the explicit ones are for older browsers.
    # blob: images are attachments our script fetched with the token (no <img> sends one).
    sockets = f" ws://{host} wss://{host}" if host and PLAIN_HOST.fullmatch(host) else ""
    return (
        f"default-src 'self'; script-src 'self' {IMPORT_MAP_SOURCE}; style-src 'self'; "
        f"img-src 'self' data: blob:; connect-src 'self'{sockets}; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    response = aiohttp_jinja2.render_template(
        "index.html",
        request,
        {
            "dev_signin": settings.dev_signin,
            "default_model": settings.default_model,
            "static_url": STATIC_URL,
            "app_version": __version__,
            "import_map": IMPORT_MAP,
        },
    )
    response.headers["Content-Security-Policy"] = page_policy(
        client_host(request, settings.trusted_proxies)
    )
    return response
