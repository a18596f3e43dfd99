"""A file of cancelled turns' endings, acknowledged before the database stored them.

A cancel is acknowledged (`turn.cancelled`) once its ending is stored. Under
load the embedded database takes 100 to 200 ms for the ending's three writes, queued
behind every other turn's; a cancel should feel instant. So when the store
has not answered within `CANCEL_ACK_SECONDS`, the ending is appended here,
to a file of this process's own under `DATA_DIR/endings/`, and flushed to
disk (`fsync`, shared by every append in flight), and the cancel is
acknowledged from what was written; the store goes on, and when it is done
the entry is settled. This file is then what makes the acknowledgement
durable: a process that dies in between leaves the entry unsettled, and the
next start on this machine stores it (`replay`) before recovery would mark
the turn `interrupted` with its last checkpoint.

Each process holds an exclusive lock on its file while it runs, so a start
replays only the files of processes that are gone. The file is emptied when
nothing in it is pending, so it stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

log = logging.getLogger(__name__)

JOURNAL_DIR = "endings"  # under DATA_DIR
SUFFIX = ".jsonl"
# Emptied once nothing is pending and it has grown past this.
COMPACT_BYTES = 1 << 20

Entry = dict[str, Any]


class EndingJournal:
    """This process's journal: `append` returns once the entry is on disk."""

    def __init__(self, directory: Path, name: str) -> None:
        # Private, like the rest of DATA_DIR: the entries are people's answers.
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = directory / f"{name}{SUFFIX}"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file: BinaryIO = os.fdopen(descriptor, "ab")
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._pending: set[str] = set()
        self._lines: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def append(self, key: str, entry: Entry) -> None:
        """Write `entry` under `key`, durably; raises OSError if the disk refused it."""
        self._pending.add(key)  # from now: the file is not emptied under it
        self._lines.append(orjson.dumps({"key": key, "entry": entry}) + b"\n")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name="ending-journal")
        try:
            await waiter
        except OSError:
            self._pending.discard(key)
            raise

    def settle(self, key: str) -> None:
        """The entry is stored in the database: no longer needed (not flushed: a settle lost
        to a crash only stores the same ending again)."""
        if key not in self._pending:
            return
        self._pending.discard(key)
        self._lines.append(orjson.dumps({"settled": key}) + b"\n")
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name="ending-journal")

    async def close(self) -> None:
        if self._flushing is not None:
            await self._flushing
        if not self._pending:
            with contextlib.suppress(OSError):
                self.path.unlink()
        self._file.close()

    async def _flush(self) -> None:
        try:
            while self._lines:
                lines, waiters = self._lines, self._waiters
                self._lines, self._waiters = [], []
                compact = not self._pending and self._size() > COMPACT_BYTES
                try:
                    await asyncio.to_thread(self._write, b"".join(lines), compact)
                except OSError as error:
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(error)
                    continue
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
        finally:
            self._flushing = None

    def _size(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def _write(self, data: bytes, compact: bool) -> None:
        if compact:  # nothing pending before these lines: they alone matter
            self._file.truncate(0)
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())


async def replay(directory: Path, store: Callable[[Entry], Awaitable[bool]]) -> int:
    """Store the unsettled entries of processes that are gone; returns how many were stored.

    A file whose lock is free belongs to no running process. Its entries are
    stored one by one (`store` is idempotent: an ending already stored is left
    as it is), and the file is removed once they all are.
    """
    stored = 0
    for path in await asyncio.to_thread(_journals, directory):
        taken = await asyncio.to_thread(_take, path)
        if taken is None:  # a running process's
            continue
        file, entries = taken
        try:
            for entry in entries:
                if await store(entry):
                    stored += 1
            path.unlink()
        finally:
            file.close()
    if stored:
        log.warning("stored %d cancelled turn ending(s) acknowledged before a crash", stored)
    return stored


def _journals(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}")) if directory.is_dir() else []


def _take(path: Path) -> tuple[BinaryIO, list[Entry]] | None:
    """The journal opened and locked, with its unsettled entries; None if its process runs."""
    file: BinaryIO = open(path, "rb+")  # noqa: SIM115 (closed by the caller)
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    return file, unsettled(file.read())


def unsettled(data: bytes) -> list[Entry]:
    """The entries of a journal's bytes that no later line settles; a torn last line is
    one the crash cut off before its flush returned, so never acknowledged."""
    entries: dict[str, Entry] = {}
    for line in data.splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if "settled" in record:
            entries.pop(str(record["settled"]), None)
        else:
            entries[str(record["key"])] = record["entry"]
    return list(entries.values())
