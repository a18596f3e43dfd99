"""The listening sockets, bound before anything else starts.

Bound here rather than inside `web.run_app`, so that a port already in use is
reported at once, in one line, before the database comes up; and the banner
names the port really bound (PORT=0 picks a free one). The sockets are bound
but not yet listening: until the app is ready, a connection is refused rather
than left waiting in the backlog.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from typing import Any

from server.startup_errors import StartupError

# An address family and a socket address as `bind` takes it (IPv6: four items).
Place = tuple[socket.AddressFamily, Any]


def bind(host: str, port: int) -> list[socket.socket]:
    """One bound socket per address `host` resolves to, or `StartupError` saying why not."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise StartupError(
            f"HOST={host}: cannot resolve it ({error.strerror}); "
            "use an IP address or a name of this machine"
        ) from None
    unique = [(family, address) for family, _, _, _, address in dict.fromkeys(addresses)]
    return _bind_all(unique, host, port, reuse_port=False)


def places(sockets: list[socket.socket]) -> list[Place]:
    """The exact addresses `sockets` are bound to (the port really chosen when PORT=0)."""
    return [(sock.family, sock.getsockname()) for sock in sockets]


def bind_shared(bound: list[Place], host: str) -> list[socket.socket]:
    """A worker's own sockets on exactly the supervisor's addresses, with SO_REUSEPORT:
    every worker listens on the port and the kernel spreads new connections among them.

    The supervisor's sockets (`bind`) have no SO_REUSEPORT and never listen: they hold
    the port, so another instance is told it is in use, and are handed no connection."""
    return _bind_all(bound, host, int(bound[0][1][1]), reuse_port=True)


def _bind_all(
    addresses: Sequence[Place], host: str, port: int, *, reuse_port: bool
) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    try:
        for family, address in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as error:
        for sock in sockets:
            sock.close()
        raise StartupError(_explain(error, host, port)) from None
    return sockets


def _explain(error: OSError, host: str, port: int) -> str:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return (
            f"{where} is already in use (another instance?); stop that process "
            "or choose another port with PORT=... or --port ..."
        )
    if error.errno == errno.EACCES:
        return (
            f"{where}: permission denied (ports below 1024 need privileges); "
            "choose another port with PORT=... or --port ..."
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return f"HOST={host}: not an address of this machine; use one of its addresses or 0.0.0.0"
    return f"cannot listen on {where}: {error.strerror or error}"
