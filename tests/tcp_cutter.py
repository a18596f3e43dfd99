"""A TCP relay in front of the service whose connections a test can cut, as a network does.

Clients connect to `url`; every byte goes through to the service and back.
`cut()` aborts every connection open now (a reset on both sides, no close
handshake: what a phone switching networks sees); new connections are
relayed as before, so a client that reconnects gets through.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpCutter:
    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.connections = 0  # accepted so far
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> int:
        """Abort every open connection; how many there were."""
        cut = len(self._open)
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()
        return cut

    async def _relay(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        try:
            service_reader, service = await asyncio.open_connection("127.0.0.1", self._target_port)
        except OSError:
            client.transport.abort()
            return
        self._open |= {client, service}
        try:
            await asyncio.gather(
                _pipe(client_reader, service), _pipe(service_reader, client), return_exceptions=True
            )
        finally:
            for writer in (client, service):
                self._open.discard(writer)
                writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    # One side ended: so does the other.
    writer.transport.abort()
