"""The embedded MongoDB-compatible server used when MONGODB_URI is unset.

mongoeco speaks the MongoDB wire protocol over a SQLite file, so the service
talks to it with the same PyMongo client it uses for a real cluster: one code
path. It runs in a child process: the database's work (all Python) then uses
the second core instead of contending with the service's event loop for the
GIL. A lock file keeps two servers off one database file, and the child exits
when its parent dies, even by SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

log = logging.getLogger(__name__)

PARENT_CHECK_SECONDS = 0.5


class EmbeddedMongo:
    """A mongoeco wire server on a free loopback port, backed by `path`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._process: BaseProcess | None = None
        self.uri = ""

    def start(self, timeout: float = 60.0) -> str:
        """Start the server process and return its URI once it accepts connections."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # spawn: a fresh interpreter, inheriting no event loop, threads or sockets.
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=serve, args=(str(self._path), sender, os.getpid()), name="embedded-mongo"
        )
        self._process.start()
        sender.close()
        if not receiver.poll(timeout):
            self.stop()
            raise RuntimeError(f"the embedded database did not start within {timeout} s")
        status, detail = receiver.recv()
        if status != "ok":
            self.stop()
            raise RuntimeError(f"the embedded database failed to start: {detail}")
        self.uri = detail
        log.info("embedded MongoDB-compatible database at %s (file %s)", self.uri, self._path)
        return self.uri

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.pid is None:
            return
        if process.is_alive():
            process.terminate()  # SIGTERM: the server closes its file cleanly
            process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(timeout)


def serve(path: str, ready: Connection, parent_pid: int) -> None:
    """The child process: hold the file's lock, serve, stop with the parent."""
    with open(f"{path}.lock", "w") as lock:
        # A server orphaned by a killed parent may still be closing this file.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            asyncio.run(_serve(path, ready, parent_pid))
        except BaseException as error:
            with contextlib.suppress(OSError):
                ready.send(("error", repr(error)))
            raise


async def _serve(path: str, ready: Connection, parent_pid: int) -> None:
    # Imported here, in the child: a deployment with MONGODB_URI never loads the engine.
    from mongoeco.engines.sqlite import SQLiteEngine
    from mongoeco.wire import AsyncMongoEcoProxyServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = AsyncMongoEcoProxyServer(engine=SQLiteEngine(path), host="127.0.0.1", port=0)
    address = await server.start()
    try:
        ready.send(("ok", f"mongodb://{address.host}:{address.port}/chat?directConnection=true"))
        ready.close()
        while not stop.is_set() and os.getppid() == parent_pid:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PARENT_CHECK_SECONDS)
    finally:
        await server.close()
