"""The embedded MongoDB-compatible server used when MONGODB_URI is unset.

mongoeco speaks the MongoDB wire protocol over a SQLite file, so the service
talks to it with the same PyMongo client it uses for a real cluster: one code
path. It runs in a child process: the database's work (all Python) then uses
the second core instead of contending with the service's event loop for the
GIL. A lock file, holding the pid of the service that took it, keeps two
servers off one database file and names the holder; the child exits
when its parent dies, even by SIGKILL.

If the child dies (killed, out of memory), `supervise` starts it again on the
same file and the same port: the service's client keeps its address and
reconnects by itself, so nothing above storage needs to know.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TextIO

from server.startup_errors import StartupError

log = logging.getLogger(__name__)

PARENT_CHECK_SECONDS = 0.5
SUPERVISE_SECONDS = 0.25
# A failed restart (the port taken meanwhile, the disk full) is tried again after
# this, doubling up to the cap, for as long as the service runs.
RESTART_RETRY_SECONDS = (0.5, 5.0)


class EmbeddedMongo:
    """A mongoeco wire server on a free loopback port, backed by `path`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._process: BaseProcess | None = None
        self.uri = ""
        self.port = 0  # chosen at the first start, kept for restarts

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 60.0) -> str:
        """Start the server process and return its URI once it accepts connections."""
        self.uri = self._spawn(timeout)
        log.info("embedded MongoDB-compatible database at %s (file %s)", self.uri, self._path)
        return self.uri

    async def supervise(self) -> None:
        """Restart the server whenever its process dies, until cancelled."""
        while True:
            await asyncio.sleep(SUPERVISE_SECONDS)
            process = self._process
            if process is None or process.is_alive():
                continue
            log.error(
                "embedded database (pid %s) died with exit code %s; restarting it on port %d",
                process.pid,
                process.exitcode,
                self.port,
            )
            self._process = None
            delay, cap = RESTART_RETRY_SECONDS
            while True:
                try:
                    await asyncio.to_thread(self._spawn, 60.0)
                    break
                except (RuntimeError, StartupError) as error:
                    log.error("embedded database not restarted (%s); retry in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, cap)
            log.warning("embedded database restarted at %s (pid %s)", self.uri, self.pid)

    def _spawn(self, timeout: float) -> str:
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # spawn: a fresh interpreter, inheriting no event loop, threads or sockets.
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=serve,
            args=(str(self._path), sender, os.getpid(), self.port),
            name="embedded-mongo",
        )
        self._process.start()
        sender.close()
        if not receiver.poll(timeout):
            self.stop()
            raise RuntimeError(f"the embedded database did not start within {timeout} s")
        status, detail = receiver.recv()
        if status == "in_use":
            self.stop()
            raise StartupError(
                f"DATA_DIR: {self._path.parent} is in use by another running instance "
                f"(pid {detail}); stop it, or give this one another DATA_DIR"
            )
        if status != "ok":
            self.stop()
            raise RuntimeError(f"the embedded database failed to start: {detail}")
        uri, port = detail
        self.port = port
        return str(uri)

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


def serve(path: str, ready: Connection, parent_pid: int, port: int = 0) -> None:
    """The child process: hold the file's lock, serve, stop with the parent."""
    # A process group of its own: a terminal's Ctrl-C goes to the service, which stops
    # this server after its drain has stored the turns' endings, not before.
    os.setpgrp()
    # Conversations are in these files: the database, its -wal, -shm and lock are
    # the service user's alone. The umask is this process's own: it only makes them.
    os.umask(0o077)
    for existing in (path, f"{path}-wal", f"{path}-shm", f"{path}.lock"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(existing, 0o600)  # made by a version before this rule
    # "a+", not "w": opening must not erase the pid of the instance holding the lock.
    with open(f"{path}.lock", "a+") as lock:
        holder = _lock(lock)
        if holder is not None:
            ready.send(("in_use", holder))
            return
        lock.truncate(0)
        lock.write(f"{parent_pid}\n")
        lock.flush()
        try:
            with _profiled(os.environ.get(PROFILE_ENV)):
                asyncio.run(_serve(path, ready, parent_pid, port))
        except BaseException as error:
            with contextlib.suppress(OSError):
                ready.send(("error", repr(error)))
            raise


PROFILE_ENV = "EMBEDDED_DATABASE_PROFILE"


@contextlib.contextmanager
def _profiled(path: str | None) -> Iterator[None]:
    """cProfile the database process into `path` (pstats format) until it stops.

    For `bench/` and for operators tracing a slow store: py-spy cannot attach to
    every Python (3.13.0 among them), and the database is its own process."""
    if not path:
        yield
        return
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)


def _lock(lock: TextIO) -> int | None:
    """Take the lock, or return the pid of the running service that holds it."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip()
    if holder.isdigit() and _alive(int(holder)):
        return int(holder)
    # The holder's service is gone: its server, orphaned by a kill, is still
    # closing this file and exits within PARENT_CHECK_SECONDS. Wait for it.
    fcntl.flock(lock, fcntl.LOCK_EX)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, under another user
    return True


async def _serve(path: str, ready: Connection, parent_pid: int, port: int) -> None:
    # Imported here, in the child: a deployment with MONGODB_URI never loads the engine.
    from mongoeco.engines.sqlite import SQLiteEngine
    from mongoeco.wire import AsyncMongoEcoProxyServer

    from server.storage import embedded_fixes

    embedded_fixes.apply()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = AsyncMongoEcoProxyServer(engine=SQLiteEngine(path), host="127.0.0.1", port=port)
    address = await server.start()
    try:
        uri = f"mongodb://{address.host}:{address.port}/chat?directConnection=true"
        ready.send(("ok", (uri, address.port)))
        ready.close()
        while not stop.is_set() and os.getppid() == parent_pid:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PARENT_CHECK_SECONDS)
    finally:
        await server.close()
