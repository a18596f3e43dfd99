"""`WEB_CONCURRENCY=N`: N worker processes on one port, started, watched and stopped here.

The supervisor serves nothing itself. It holds the port (bound, never listening),
starts the embedded database once when MONGODB_URI is unset (every worker is handed
its URI, as if it were a cluster), recovers the turns a previous run left running,
and starts N workers, each a full service (`worker.py`). A worker that dies is
started again after a pause that doubles while it keeps dying. SIGTERM or SIGINT
is forwarded once to every worker; the supervisor waits for their drains, stops the
database after the last one (their endings are written to it) and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from server.auth import Authenticator
from server.config import Settings
from server.files.blocks import keep_attachments
from server.files.store import FileStore
from server.listen import places
from server.startup_errors import StartupError
from server.storage.client import open_database
from server.storage.embedded import EmbeddedMongo
from server.storage.turns import TurnStore
from server.turns.journal import JOURNAL_DIR, replay
from server.workers import worker

log = logging.getLogger(__name__)

# A worker that dies is started again after this pause, doubling up to the cap while it
# keeps dying; one that ran for STEADY_SECONDS starts from the first pause again.
RESTART_SECONDS = (0.5, 30.0)
STEADY_SECONDS = 60.0
# After the workers' drain (SHUTDOWN_DRAIN_SECONDS): storing endings, closing the database.
STOP_MARGIN_SECONDS = 10.0


@dataclass
class Worker:
    """One running worker process and the supervisor's end of its channel."""

    index: int
    process: BaseProcess
    channel: Connection
    started: float

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    async def first_word(self) -> tuple[str, object] | None:
        """`("ready", pid)` or `("error", StartupError)`; None if it died without a word."""
        await _readable(self.channel.fileno())
        try:
            word: tuple[str, object] = self.channel.recv()
        except (EOFError, OSError):
            return None
        return word

    async def exited(self) -> int | None:
        await _readable(self.process.sentinel)
        self.process.join()
        self.channel.close()
        return self.process.exitcode

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)


def run(settings: Settings, sockets: list[socket.socket], on_listening: Callable[[], None]) -> None:
    """Until SIGTERM/SIGINT and the workers' drain; a fixable cause raises `StartupError`."""
    asyncio.run(Supervisor(settings, sockets).run(on_listening))


class Supervisor:
    def __init__(self, settings: Settings, sockets: list[socket.socket]) -> None:
        self._settings = settings
        self._places = places(sockets)
        self._workers: dict[int, Worker] = {}
        self._stopping = asyncio.Event()

    async def run(self, on_listening: Callable[[], None]) -> None:
        settings = self._settings
        Authenticator(settings)  # the dev secret, made here once rather than raced by N workers
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        embedded: EmbeddedMongo | None = None
        watcher: asyncio.Task[None] | None = None
        if settings.mongodb_uri is None:
            embedded = EmbeddedMongo(settings.data_dir / "chat.sqlite3")
            uri = await asyncio.to_thread(embedded.start)
            watcher = asyncio.create_task(embedded.supervise(), name="embedded-mongo-supervisor")
            settings = replace(settings, mongodb_uri=uri)
        try:
            if embedded is not None:
                # Only this supervisor's workers use this database, and none runs yet: every
                # running turn is dead. Workers themselves recover by lease only, since a
                # sibling may own a running turn.
                await _recover_everything(settings)
            if await self._start_all(settings):
                on_listening()
                keepers = [
                    asyncio.create_task(self._keep(index, settings)) for index in self._workers
                ]
                await self._stopping.wait()
                for keeper in keepers:
                    keeper.cancel()
                await asyncio.gather(*keepers, return_exceptions=True)
        finally:
            await self._stop_all()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    async def _start_all(self, settings: Settings) -> bool:
        """Start every worker and wait until each listens: False if a signal came first,
        `StartupError` (the first worker's reason) if one could not start."""
        for index in range(1, settings.web_concurrency + 1):
            self._workers[index] = self._spawn(index, settings)
        words = asyncio.gather(*(w.first_word() for w in self._workers.values()))
        stop = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait((words, stop), return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not words.done():
            words.cancel()
            return False
        for word, started in zip(words.result(), self._workers.values(), strict=True):
            if word is None or word[0] != "ready":
                if word is not None and isinstance(word[1], StartupError):
                    raise word[1]
                code = await started.exited()
                raise StartupError(
                    f"worker {started.index} exited with code {code} while starting; "
                    "see the lines above"
                )
        log.info(
            "%d workers on port %d (pids %s)",
            len(self._workers),
            self._places[0][1][1],
            ", ".join(str(w.pid) for w in self._workers.values()),
        )
        return True

    async def _keep(self, index: int, settings: Settings) -> None:
        """Start worker `index` again whenever it dies, until cancelled."""
        pause, cap = RESTART_SECONDS
        while True:
            dead = self._workers[index]
            code = await dead.exited()
            if time.monotonic() - dead.started >= STEADY_SECONDS:
                pause = RESTART_SECONDS[0]
            log.error(
                "worker %d (pid %d) died with exit code %s; starting it again in %.1f s",
                index,
                dead.pid,
                code,
                pause,
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, cap)
            restarted = self._workers[index] = self._spawn(index, settings)
            word = await restarted.first_word()
            if word is not None and word[0] == "ready":
                log.warning("worker %d started again (pid %d)", index, restarted.pid)
            elif word is not None:
                log.error("worker %d could not start: %s", index, word[1])

    def _spawn(self, index: int, settings: Settings) -> Worker:
        # spawn: a fresh interpreter, inheriting no event loop, threads or sockets.
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(
            target=worker.run,
            args=(settings, self._places, theirs, index),
            name=f"chat-worker-{index}",
        )
        process.start()
        theirs.close()
        return Worker(index, process, ours, time.monotonic())

    async def _stop_all(self) -> None:
        """SIGTERM to each worker, then wait out their drain; SIGKILL what is left after it."""
        running = [w for w in self._workers.values() if w.process.exitcode is None]
        for each in running:
            each.terminate()
        waits = [asyncio.create_task(each.exited()) for each in running]
        if not waits:
            return
        limit = self._settings.shutdown_drain_seconds + STOP_MARGIN_SECONDS
        _, late = await asyncio.wait(waits, timeout=limit)
        for each in running:
            if each.process.exitcode is None:
                log.error(
                    "worker %d (pid %d) did not stop in %.0f s; killing it",
                    each.index,
                    each.pid,
                    limit,
                )
                each.process.kill()
        await asyncio.gather(*late, return_exceptions=True)


async def _recover_everything(settings: Settings) -> None:
    async with open_database(settings) as (db, _ping):
        store = TurnStore(db, owner=uuid.uuid4().hex, lease_seconds=settings.turn_lease_seconds)
        # Cancels the last run told from its journals but had not stored: stored first.
        await replay(settings.data_dir / JOURNAL_DIR, store.restore)
        recovered = await store.recover(everything=True)
        await keep_attachments(db["messages"], FileStore(db), recovered)
    if recovered:
        log.warning("%d turns left running by the last run were marked interrupted", len(recovered))


async def _readable(fd: int) -> None:
    """Until `fd` can be read (data, end of file, or a process sentinel that ended)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
