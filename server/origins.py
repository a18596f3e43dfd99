"""Which web pages may drive the service: the `Origin` and `Host` checks.

A browser lets any page open a WebSocket to any host, and lets it POST a
"simple" request anywhere; it only tells the server where the page came from,
in `Origin`, which the page cannot forge. So the server has to look. Clients
that are not browsers (mobile apps, scripts, other services) send no `Origin`
and are judged by their token alone.

`Host` is checked as well for dev sign-in: a page at `evil.example` whose name
the attacker re-points at 127.0.0.1 (DNS rebinding) is same-origin with itself,
so only the name the browser asked for gives it away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from server.addresses import DEFAULT_PORTS, is_loopback, normalize_origin
from server.errors import HostNotAllowed, OriginNotAllowed
from server.forwarded import client_host

if TYPE_CHECKING:
    from server.config import Settings


def same_origin(origin: str, host: str | None) -> bool:
    """Whether a page at `origin` is this service reached as `host` (a Host header's value).

    A Host without a port (a proxy's `$host`) stands for the scheme's default port.
    """
    if not host:
        return False
    try:
        page = urlsplit(origin)
        asked = urlsplit(f"//{host}")
        page_port, asked_port = page.port, asked.port
    except ValueError:
        return False
    scheme = page.scheme.lower()
    if scheme not in ("http", "https") or not page.hostname or page.hostname != asked.hostname:
        return False
    default = DEFAULT_PORTS[scheme]
    return (page_port or default) == (asked_port or default)


def check_origin(request: web.Request, settings: Settings) -> None:
    """Refuse a browser request from a page that is neither this origin nor ALLOWED_ORIGINS."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return
    if same_origin(origin, client_host(request, settings.trusted_proxies)):
        return
    if normalize_origin(origin) in settings.allowed_origins:
        return
    raise OriginNotAllowed(
        f"Pages at {origin[:200]!r} may not use this service; "
        "the operator can list their origin in ALLOWED_ORIGINS"
    )


def check_dev_signin(request: web.Request, settings: Settings) -> None:
    """Dev sign-in only under a loopback name, from this origin (or an allowed one)."""
    host = client_host(request, settings.trusted_proxies)
    try:
        hostname = urlsplit(f"//{host}").hostname if host else None
    except ValueError:  # an unbalanced "[" of an IPv6 literal
        hostname = None
    if hostname is None or not is_loopback(hostname):
        raise HostNotAllowed(
            "Dev sign-in answers only at localhost, 127.0.0.1 or [::1]; "
            "open the page at one of those"
        )
    check_origin(request, settings)
