"""The embedded MongoDB-compatible server used when MONGODB_URI is unset.

mongoeco speaks the MongoDB wire protocol over a SQLite file, so the service
talks to it with the same PyMongo client it uses for a real cluster: one code
path. It runs on its own thread with its own event loop, so the database's
work never stalls the service's loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedMongo:
    """A mongoeco wire server on a free loopback port, backed by `path`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.uri = ""

    def start(self, timeout: float = 30.0) -> str:
        """Start the server thread and return its URI once it accepts connections."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        ready: Future[str] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="embedded-mongo", daemon=True
        )
        self._thread.start()
        self.uri = ready.result(timeout=timeout)
        log.info("embedded MongoDB-compatible database at %s (file %s)", self.uri, self._path)
        return self.uri

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, ready: Future[str]) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as error:  # surfaced to start() rather than lost in a thread
            if not ready.done():
                ready.set_exception(error)
            else:
                log.exception("embedded database stopped with an error")

    async def _serve(self, ready: Future[str]) -> None:
        # Imported here: a deployment with MONGODB_URI never loads the embedded engine.
        from mongoeco.engines.sqlite import SQLiteEngine
        from mongoeco.wire import AsyncMongoEcoProxyServer

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = AsyncMongoEcoProxyServer(
            engine=SQLiteEngine(str(self._path)), host="127.0.0.1", port=0
        )
        address = await server.start()
        try:
            ready.set_result(f"mongodb://{address.host}:{address.port}/chat?directConnection=true")
            await self._stop.wait()
        finally:
            await server.close()
