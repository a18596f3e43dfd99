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

from server.config import StartupError


def bind(host: str, port: int) -> list[socket.socket]:
    """One bound socket per address `host` resolves to, or `StartupError` saying why not."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise StartupError(
            f"HOST={host}: cannot resolve it ({error.strerror}); "
            "use an IP address or a name of this machine"
        ) from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
