"""One full service in this process: its event loop (uvloop), the app, until SIGTERM/SIGINT.

What `python -m server` runs with `WEB_CONCURRENCY=1`, and what each worker runs otherwise.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import uvloop

from server.app import build_app
from server.config import Settings
from server.logs import AccessLogger
from server.transport.malformed import run_app


def run_service(
    settings: Settings,
    sockets: list[socket.socket],
    on_listening: Callable[[], None],
    loop: asyncio.AbstractEventLoop | None = None,
) -> None:
    """Serve on `sockets` until a signal, then drain; a fixable cause raises `StartupError`."""
    run_app(
        build_app(settings),
        sockets,
        on_listening,
        loop=loop
        or uvloop.new_event_loop(),  # a cheaper loop: every relayed token crosses it twice
        access_log_class=AccessLogger,
        keepalive_timeout=75.0,
        # After the drain (app.py) only streams of turns run elsewhere are left.
        shutdown_timeout=3.0,
    )
