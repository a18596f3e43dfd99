"""A TCP relay in front of the database that can make it slow, or hang it, per command.

What a busy database looks like from the service: every command answered,
late. `slow(seconds)` holds each command from the client for that long
before passing it on, except the ones that say the server is alive (`hello`,
`ping`): a database queueing writes still answers those at once (measured:
p99 154 ms under 200 turns starting together). `hung=True` holds those too,
which is what a stopped database looks like. Commands are read off the wire
as MongoDB's OP_MSG frames: the command's name is the first key of the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

OP_MSG = 2013
ALIVE = frozenset({"hello", "ismaster", "isMaster", "ping", "endSessions"})


class SlowDatabase:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.delay = 0.0
        self.hung = False
        self.held = 0  # commands held so far

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        server_reader, server = await asyncio.open_connection(*self._target)
        self._writers |= {client, server}
        upstream = asyncio.create_task(self._commands(client_reader, server))
        try:
            while data := await server_reader.read(65536):
                client.write(data)
                await client.drain()
        except ConnectionError:
            pass
        finally:
            upstream.cancel()
            for writer in (client, server):
                self._writers.discard(writer)
                writer.transport.abort()
            with contextlib.suppress(asyncio.CancelledError):
                await upstream

    async def _commands(self, reader: asyncio.StreamReader, server: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                header = await reader.readexactly(16)
                length, _request, _response_to, opcode = struct.unpack("<iiii", header)
                body = await reader.readexactly(length - 16)
                alive = opcode == OP_MSG and _command(body) in ALIVE
                if self.hung or (self.delay and not alive):
                    self.held += 1
                    if self.hung:
                        await asyncio.Event().wait()  # never answered, as a stopped process
                    await asyncio.sleep(self.delay)
                server.write(header + body)
                await server.drain()


def _command(body: bytes) -> str:
    """The command an OP_MSG carries: the first key of its body section (kind 0)."""
    index = 4  # flagBits
    while index < len(body):
        kind = body[index]
        if kind == 0:
            start = index + 1 + 4 + 1  # kind, document length, first element's type
            return body[start : body.index(b"\0", start)].decode()
        size = struct.unpack_from("<i", body, index + 1)[0]
        index += 1 + size  # a document sequence (kind 1): skip it
    return ""


@contextlib.asynccontextmanager
async def relayed(uri: str) -> AsyncIterator[SlowDatabase]:
    """A started relay in front of the server at `uri`, answering at full speed when done."""
    address = urlsplit(uri)
    slow = SlowDatabase(address.hostname or "127.0.0.1", address.port or 27017)
    await slow.start()
    try:
        yield slow
    finally:
        slow.delay, slow.hung = 0.0, False
        await slow.close()
