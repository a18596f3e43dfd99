"""One worker of `WEB_CONCURRENCY`: a full service on the shared port, in a process of its own.

Started by the supervisor (`multiprocessing`, spawn: a fresh interpreter). It binds
its own SO_REUSEPORT sockets on the supervisor's addresses, so the kernel hands
each new connection to one worker. It tells the supervisor once, over `channel`,
that it listens (`("ready", pid)`) or why it could not start (`("error", error)`),
and watches the same channel: end of file means the supervisor is gone (even by
SIGKILL), and the worker then drains and exits as on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from multiprocessing.connection import Connection

import uvloop

from server.config import Settings
from server.listen import Place, bind_shared
from server.logs import configure_logging
from server.startup_errors import StartupError
from server.workers.service import run_service


def run(settings: Settings, places: list[Place], channel: Connection, index: int) -> None:
    """The worker process's entry point; exits 2 after reporting a start-up error."""
    # A process group of its own: a terminal's Ctrl-C reaches the supervisor only, which
    # forwards one SIGTERM; a second signal would cut the worker's drain short.
    os.setpgrp()
    configure_logging(settings, worker=index)
    try:
        sockets = bind_shared(places, settings.host)
        loop = uvloop.new_event_loop()
        loop.add_reader(channel.fileno(), _orphaned, loop, channel)
        run_service(settings, sockets, lambda: _report(channel, ("ready", os.getpid())), loop)
    except StartupError as error:
        _report(channel, ("error", error))
        sys.exit(2)


def _report(channel: Connection, message: tuple[str, object]) -> None:
    with contextlib.suppress(OSError):  # the supervisor is gone; nobody to tell
        channel.send(message)


def _orphaned(loop: asyncio.AbstractEventLoop, channel: Connection) -> None:
    """The supervisor never writes: the channel turns readable only when it closes."""
    loop.remove_reader(channel.fileno())
    os.kill(os.getpid(), signal.SIGTERM)  # the graceful path: drain, 1012, exit
