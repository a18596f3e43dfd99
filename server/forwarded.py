"""The client's address behind trusted reverse proxies (TRUSTED_PROXIES, X-Forwarded-For).

Anyone can send `X-Forwarded-For`, so it is believed only when the direct peer is
a proxy we trust, and only as far as the chain of trusted proxies reaches: walking
the header from the right (each proxy appends the address it saw), the first hop
that is not a trusted proxy is the client. Hops to its left were written by the
client itself and are ignored.

`request.remote` stays the real peer; the resolved address is `client_address()`
(the access log, and per-IP limits).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from server.typedefs import client_address_key

if TYPE_CHECKING:
    from server.addresses import IPNetwork


def forwarded_middleware(trusted: tuple[IPNetwork, ...]) -> Middleware:
    """Resolve each request's client address once, into request[client_address_key]."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if trusted and request.remote is not None:
            request[client_address_key] = resolve_client(
                request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, ()), trusted
            )
        return await handler(request)

    return middleware


def resolve_client(peer: str, forwarded_for: Iterable[str], trusted: tuple[IPNetwork, ...]) -> str:
    """The rightmost address in the peer + X-Forwarded-For chain that is not a trusted proxy.

    A hop that is not an IP address ends the walk at the last trusted one: a
    garbled header never yields a made-up client address.
    """
    client = peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        if not _is_trusted(client, trusted):
            break
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break
        client = hop
    return client


def client_address(request: web.BaseRequest) -> str:
    """Who is on the other end: the forwarded client behind a trusted proxy, else the peer."""
    return request.get(client_address_key) or request.remote or "-"


def client_host(request: web.BaseRequest, trusted: tuple[IPNetwork, ...]) -> str | None:
    """The host the client asked for: the `Host` header, or behind a trusted proxy the
    `X-Forwarded-Host` it wrote (its last value: the one that proxy appended)."""
    if trusted and request.remote is not None and _is_trusted(request.remote, trusted):
        forwarded = ",".join(request.headers.getall(hdrs.X_FORWARDED_HOST, ()))
        if forwarded.strip():
            return forwarded.rsplit(",", 1)[-1].strip() or None
    return request.headers.get(hdrs.HOST)


def client_scheme(request: web.BaseRequest, trusted: tuple[IPNetwork, ...]) -> str:
    """`http` or `https` as the client used it: behind a trusted proxy the
    `X-Forwarded-Proto` it wrote (its last value), else this connection's."""
    if trusted and request.remote is not None and _is_trusted(request.remote, trusted):
        forwarded = ",".join(request.headers.getall(hdrs.X_FORWARDED_PROTO, ()))
        last = forwarded.rsplit(",", 1)[-1].strip().lower()
        if last in ("http", "https"):
            return last
    return request.scheme


def public_origin(request: web.BaseRequest, trusted: tuple[IPNetwork, ...]) -> str:
    """`scheme://host` as the client reached us: where links we hand out must point."""
    host = client_host(request, trusted) or request.host
    return f"{client_scheme(request, trusted)}://{host}"


def _is_trusted(address: str, trusted: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(ip in network for network in trusted)
