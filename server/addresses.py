"""Addresses and origins as plain values: the pure helpers under the settings.

Nothing here imports the service, so `env.py` and `config.py` (which parse
these from the environment) and `origins.py` and `forwarded.py` (which check
requests against them) all stand above it, and every import arrow points down.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (brackets of an IPv6 literal allowed)."""
    host = host.lower().rstrip(".").removeprefix("[").removesuffix("]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_origin(value: str) -> str | None:
    """`scheme://host[:port]` lower-cased, the scheme's default port left out; None if not one."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username is not None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    scheme = parts.scheme.lower()
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
