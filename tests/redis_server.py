"""Debian's `redis-server` as a real child process, for the tests of processes that meet in Redis.

Stoppable and restartable on the same port, so a test can take Redis away in the
middle of a turn and bring it back. It keeps nothing on disk (`--save ""`).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from tests.live_server import free_port

REDIS_SERVER = shutil.which("redis-server") or (
    "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
)
START_TIMEOUT = 10.0


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        assert REDIS_SERVER is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "redis.log").open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                stdout=log,
                stderr=log,
            )  # fmt: skip
        async with asyncio.timeout(START_TIMEOUT):
            while not await self.answers():
                if self.process.returncode is not None:
                    raise AssertionError((self.directory / "redis.log").read_text()[-2000:])
                await asyncio.sleep(0.05)

    async def answers(self) -> bool:
        try:
            return await self.command("PING") == b"+PONG\r\n"
        except OSError:
            return False

    async def command(self, line: str) -> bytes:
        """One inline command (`FLUSHALL`), its reply's first line."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()
            return await reader.readline()
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
