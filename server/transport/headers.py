"""Security headers on every response, and a `Server` header that names no versions."""

from __future__ import annotations

from collections.abc import MutableMapping

from aiohttp import web

SERVER_NAME = "chat-service"
# JSON, event streams, static files: nothing in them may run, load or be framed.
# The page sets its own, looser policy (transport/page.py).
STRICT_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HEADERS = {
    "Server": SERVER_NAME,
    "X-Content-Type-Options": "nosniff",
    # The page's URLs name conversations; no other site needs to learn them.
    "Referrer-Policy": "no-referrer",
    # `frame-ancestors 'none'` for browsers that predate CSP level 2.
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def secure(headers: MutableMapping[str, str]) -> None:
    headers.update(HEADERS)
    headers.setdefault("Content-Security-Policy", STRICT_POLICY)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every response the app sends, errors and upgrades included."""
    secure(response.headers)
