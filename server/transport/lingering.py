"""A WebSocket that closes on a bad frame without losing its own close frame.

When a client sends a frame aiohttp refuses (over the hard size limit, invalid
UTF-8, a protocol error), aiohttp writes the close frame (1009, 1007, 1002) and
closes the socket at once, while the rest of the refused frame is still
arriving. Closing a socket with unread data makes the kernel answer with a
reset, and a reset makes the client's kernel drop what it had not yet read:
our close frame. The client then saw "connection lost" (1006) instead of the
documented 1009 (issue 18: 20 of 20 5-MiB frames on loopback).

So the socket lingers, as HTTP servers do for the same reason: after the close
frame, our side is shut for writing and whatever the client still sends is read
and dropped until it closes too, or `LINGER_SECONDS` pass. The handler waits
for that (`linger()`), so that aiohttp does not close the socket under it.
tests/test_bad_frames.py pins this through a real socket: an aiohttp upgrade
that moves `_close_transport` fails a test rather than dropping clients again.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSCloseCode, web

from server.codec import dumps
from server.errors import PayloadTooLarge
from server.transport.problems import error_frame

# Close codes aiohttp sets when it refuses a frame the client is still sending.
REFUSED_FRAME_CODES = frozenset(
    {
        WSCloseCode.PROTOCOL_ERROR,
        WSCloseCode.UNSUPPORTED_DATA,
        WSCloseCode.INVALID_TEXT,
        WSCloseCode.POLICY_VIOLATION,
        WSCloseCode.MESSAGE_TOO_BIG,
    }
)
LINGER_SECONDS = 5.0


class _Discard(asyncio.Protocol):
    """Reads and drops the rest of what the client sends, until it closes."""

    def __init__(self, previous: asyncio.BaseProtocol, done: asyncio.Future[None]) -> None:
        self._previous = previous
        self._done = done

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        if not self._done.done():
            self._done.set_result(None)
        return True  # keep the socket until the handler closes it: nothing unread is left

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_result(None)
        self._previous.connection_lost(exc)


class LingeringWebSocket(web.WebSocketResponse):
    def __init__(self, *, frame_limit: int, **options: object) -> None:
        super().__init__(max_msg_size=frame_limit, **options)  # type: ignore[arg-type]
        self._frame_limit = frame_limit
        self._drained: asyncio.Future[None] | None = None
        self._lingering: asyncio.BaseTransport | None = None
        self._refused_frame = False

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        # aiohttp calls this with the refusal's code, then records 1006 (it cannot read
        # the client's close past the bad frame) before closing the socket.
        self._refused_frame = code in REFUSED_FRAME_CODES
        if code == WSCloseCode.MESSAGE_TOO_BIG and not self.closed:
            # The documented error frame first, then the close frame naming the same code.
            error = PayloadTooLarge(f"Frames are limited to {self._frame_limit} bytes")
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send_str(dumps(error_frame(error)))
            message = message or error.code.encode()
        return await super().close(code=code, message=message, drain=drain)

    def _close_transport(self) -> None:
        request = self._req
        transport = request.transport if request is not None else None
        if (
            transport is None
            or transport.is_closing()
            or not self._refused_frame
            or not transport.can_write_eof()
        ):
            super()._close_transport()
            return
        self._drained = asyncio.get_running_loop().create_future()
        self._lingering = transport
        transport.set_protocol(_Discard(transport.get_protocol(), self._drained))
        transport.write_eof()  # after the close frame: the client reads it, then closes

    async def linger(self) -> None:
        """Wait until the client has closed after a refused frame (at most LINGER_SECONDS)."""
        if self._drained is None or self._lingering is None:
            return
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._drained), LINGER_SECONDS)
        finally:
            self._lingering.close()
