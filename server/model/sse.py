"""Server-sent events, framed from raw bytes: the transport layer of the model stream.

The SDK's streaming helper builds a typed object and a message snapshot for
every event; at a few hundred streams that was most of the service's CPU.
This layer only cuts the byte stream into events and hands on each `data`
field undecoded, so the next layer decodes exactly what a turn needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator


class SSEFramer:
    """Feed bytes as they arrive; get the `data` of each complete event.

    Only `data` matters for the Messages API (its JSON names the event's type);
    `event:`, `id:` and comments are skipped. Multi-line data is joined with
    newlines, as the SSE specification says.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + chunk if self._buffer else chunk
        *complete, self._buffer = buffer.split(b"\n\n")
        found: list[bytes] = []
        for block in complete:
            data = _data_of(block)
            if data is not None:
                found.append(data)
        return found


def _data_of(block: bytes) -> bytes | None:
    if block.startswith(b"event:") and block.count(b"\n") == 1:
        # The common shape, `event: X\ndata: {...}`: one slice, no line loop.
        line = block[block.index(b"\n") + 1 :]
        if line.startswith(b"data:"):
            return line[6:] if line[5:6] == b" " else line[5:]
    parts = [
        line[6:] if line[5:6] == b" " else line[5:]
        for line in block.split(b"\n")
        if line.startswith(b"data:")
    ]
    return b"\n".join(parts) if parts else None


async def events_of(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The `data` of each event in a byte stream."""
    framer = SSEFramer()
    async for chunk in chunks:
        for data in framer.feed(chunk):
            yield data
