"""`python -m server` as a real child process, for what only a process shows.

SIGKILL (nothing of ours gets to clean up), several processes on one
database, the command line. Never blocks the test's loop: the fake upstream
and the test's clients run on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import JWT_SECRET, WS, eventually
from tests.live_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def process_env(upstream_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `python -m server` child under test: the fake upstream, a
    test JWT secret, a free port, its own data directory; no MONGODB_URI unless given."""
    env = {name: value for name, value in os.environ.items() if name != "MONGODB_URI"}
    env.update(
        DATA_DIR=str(data_dir),
        JWT_SECRET=JWT_SECRET,
        ANTHROPIC_API_KEY="test",
        ANTHROPIC_BASE_URL=upstream_url,
        UPSTREAM_MAX_RETRIES="0",
        PORT=str(free_port()),
        CHECKPOINT_INTERVAL_SECONDS="0.05",
        CHAT_TITLES="off",
        LOG_LEVEL="WARNING",
        SHUTDOWN_DRAIN_SECONDS="1",
        STORAGE_TIMEOUT_SECONDS="30",  # as in conftest's env: the hung-database test sets 2.5
        CANCEL_ACK_SECONDS="30",  # as in conftest's env
    )
    env.update(extra)
    return env


def children(pid: int) -> list[int]:
    """The direct child processes of `pid`, whichever of its threads started them (Linux)."""
    tasks = Path(f"/proc/{pid}/task").glob("*/children")
    return [int(child) for path in tasks for child in path.read_text().split()]


def embedded_database_pid(server_pid: int) -> int:
    """The pid of the embedded database's process, a child of the service."""
    for child in children(server_pid):
        command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in command and b"resource_tracker" not in command:
            return child
    raise AssertionError(f"no embedded database among the children of {server_pid}")


class ServerProcess:
    """`python -m server` as a child process, restartable with the same command."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.base_url = f"http://127.0.0.1:{env['PORT']}"
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, session: aiohttp.ClientSession) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server", cwd=ROOT, env=self.env, stdout=log, stderr=log
            )

        async def healthy() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                async with session.get(f"{self.base_url}/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        assert await eventually(healthy, timeout=30, interval=0.1), self.log_path.read_text()

    async def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        assert await self.process.wait() == -signal.SIGKILL

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@contextlib.asynccontextmanager
async def several(
    names: tuple[str, ...],
    upstream_url: str,
    directory: Path,
    mongo_uri: str,
    *,
    start: bool,
    **extra: str,
) -> AsyncIterator[list[ServerProcess]]:
    """Processes alike but for their port and data directory, as behind a load balancer, on
    one database; quick checkpoints and short leases; started together (or left to the
    test), stopped at the end."""
    settings = {
        "MONGODB_URI": mongo_uri,
        "CHECKPOINT_INTERVAL_SECONDS": "0.1",
        "TURN_LEASE_SECONDS": "1",
        **extra,
    }
    processes = [
        ServerProcess(process_env(upstream_url, directory / n, **settings), directory / f"{n}.log")
        for n in names
    ]
    try:
        if start:
            async with aiohttp.ClientSession() as session:
                await asyncio.gather(*(process.start(session) for process in processes))
        yield processes
    finally:
        for process in processes:
            await process.stop()


async def connect(
    session: aiohttp.ClientSession,
    process: ServerProcess,
    headers: dict[str, str],
    *,
    pushes: bool = False,
) -> WS:
    """A signed-in WebSocket to one process, its `ready` frame read (`WS` says what `pushes` is)."""
    ws = WS(await session.ws_connect(f"{process.base_url}/ws", headers=headers), pushes=pushes)
    ws.ready = await ws.recv()
    assert ws.ready["type"] == "ready"
    return ws


async def followed_elsewhere(
    session: aiohttp.ClientSession,
    owner: ServerProcess,
    follower: ServerProcess,
    headers: dict[str, str],
) -> tuple[WS, dict[str, Any], WS]:
    """A turn started on `owner` (its first delta received), and a socket on `follower`
    that resumed it after `seq` 1: the starter's socket, `turn.started`, the follower's."""
    here = await connect(session, owner, headers)
    started = await here.turn_started("Count")
    await here.until("turn.delta")
    there = await connect(session, follower, headers)
    await there.send({"type": "turn.resume", "turn_id": started["turn_id"], "after_seq": 1})
    return here, started, there
