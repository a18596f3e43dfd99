"""One WebSocket for all of a client's turns, reconnected when it drops.

What a mobile client must get right, in one place:

- A dropped socket does not stop a turn on the server (it only detaches), so
  after every reconnect each turn still followed is re-attached with
  `turn.resume` from the last `seq` taken: the events after it come, none
  before, and `Answer.take` drops any repeat.
- A `turn.start` sent just before the drop may or may not have arrived:
  resume it first; `not_found` means it never did, so it is sent again (its
  `turn_id` is its idempotency key: sending it twice never answers twice).
- Reconnects back off (0.5 s doubling to 10 s, with jitter); the heartbeat
  notices a network that died without closing the socket.
- Frames of unknown types are skipped (the contract grows); pushes go to
  `on_push`, and `on_reconnect` catches up on those missed while away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from chat_client.errors import ApiError
from chat_client.protocol import PUSHES, Answer, backoff, is_terminal

log = logging.getLogger(__name__)

JSON = dict[str, Any]
GIVE_UP_AFTER = 8  # reconnects in a row that fail


@dataclass
class _Followed:
    answer: Answer
    start: JSON | None  # the `turn.start` frame until `turn.started` arrives
    resumed_start: bool = False  # re-attached without knowing the start arrived
    frames: asyncio.Queue[JSON | ApiError] = field(default_factory=asyncio.Queue)


class WsSession:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        token: str,
        *,
        on_push: Callable[[JSON], None] | None = None,
        on_reconnect: Callable[[], Awaitable[Any]] | None = None,
        heartbeat: float = 20.0,
    ) -> None:
        self._http = http
        self._url = url
        self._token = token
        self._on_push = on_push
        self._on_reconnect = on_reconnect
        self._heartbeat = heartbeat
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._followed: dict[str, _Followed] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self.ready: JSON = {}
        self.reconnects = 0

    async def open(self) -> None:
        await self._connect()
        self._reader = asyncio.create_task(self._read_forever(), name="chat-client-ws")

    async def close(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def __aenter__(self) -> WsSession:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # Turns

    def ask(
        self, content: str, *, turn_id: str | None = None, **fields: Any
    ) -> AsyncIterator[JSON]:
        """Start a turn (`conversation_id`, `model`... as `turn.start` takes them) and yield
        its events up to the terminal one, across reconnects."""
        turn_id = turn_id or str(uuid.uuid4())
        start = {"type": "turn.start", "turn_id": turn_id, "content": content, **fields}
        followed = self._followed[turn_id] = _Followed(Answer(turn_id), start)
        return self._stream(followed, start)

    def resume(self, turn_id: str, after_seq: int = 0) -> AsyncIterator[JSON]:
        """Follow a turn started elsewhere (another device, before a restart) from `after_seq`."""
        followed = self._followed[turn_id] = _Followed(Answer(turn_id, last_seq=after_seq), None)
        frame = {"type": "turn.resume", "turn_id": turn_id, "after_seq": after_seq}
        return self._stream(followed, frame)

    async def cancel(self, turn_id: str) -> None:
        """Stop a turn; it ends with `turn.cancelled`, its partial answer kept."""
        await self._send({"type": "turn.cancel", "turn_id": turn_id})

    def answer(self, turn_id: str) -> Answer | None:
        followed = self._followed.get(turn_id)
        return followed.answer if followed is not None else None

    async def _stream(self, followed: _Followed, first: JSON) -> AsyncIterator[JSON]:
        await self._send(first)
        turn_id = followed.answer.turn_id
        try:
            while True:
                frame = await followed.frames.get()
                if isinstance(frame, ApiError):
                    raise frame
                yield frame
                if is_terminal(frame):
                    return
        finally:
            if self._followed.get(turn_id) is followed:
                del self._followed[turn_id]

    # The socket

    async def _connect(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        ws = await self._http.ws_connect(self._url, headers=headers, heartbeat=self._heartbeat)
        message = await ws.receive(timeout=10)
        frame = message.json() if message.type == aiohttp.WSMsgType.TEXT else {}
        if frame.get("type") != "ready":
            await ws.close()
            raise (
                ApiError.from_frame(frame)
                if frame.get("type") == "error"
                else ApiError(0, "disconnected", "The socket closed before it was ready")
            )
        self._ws, self.ready = ws, frame

    async def _send(self, frame: JSON) -> None:
        """Send if connected; a frame lost with the socket is taken care of on reconnect."""
        if self._ws is None or self._ws.closed:
            return
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await self._ws.send_json(frame)

    async def _read_forever(self) -> None:
        while not self._closed:
            assert self._ws is not None
            async for message in self._ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await self._dispatch(message.json())
            if self._closed:
                return
            self._ws = None
            await self._reconnect()

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._closed:
            attempt += 1
            if attempt > GIVE_UP_AFTER:
                self._fail_all(ApiError(0, "disconnected", "The service cannot be reached"))
                attempt = 0
            await asyncio.sleep(backoff(attempt))
            try:
                await self._connect()
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as error:
                log.info("reconnect %d failed: %s", attempt, error)
                continue
            self.reconnects += 1
            if self._on_reconnect is not None:
                try:
                    await self._on_reconnect()  # what changed while away, before the turns
                except (ApiError, aiohttp.ClientError) as error:
                    log.warning("catching up after a reconnect failed: %s", error)
            for turn_id, followed in list(self._followed.items()):
                # A start that may not have arrived is asked about first (see above).
                followed.resumed_start = followed.start is not None
                after = followed.answer.last_seq
                await self._send({"type": "turn.resume", "turn_id": turn_id, "after_seq": after})
            return

    async def _dispatch(self, frame: JSON) -> None:
        kind = frame.get("type")
        if kind in PUSHES:
            if self._on_push is not None:
                self._on_push(frame)
            return
        followed = self._followed.get(str(frame.get("turn_id")))
        if followed is None:
            return  # pong, an error of no turn, or a type of a later version
        if kind == "error":
            if frame.get("code") == "turn_not_running":
                return  # a cancel that came too late: the turn ends by itself
            if frame.get("code") == "not_found" and followed.resumed_start:
                assert followed.start is not None
                followed.resumed_start = False
                await self._send(followed.start)  # it never arrived: send it now
                return
            followed.frames.put_nowait(ApiError.from_frame(frame))
            return
        if not isinstance(kind, str) or not kind.startswith("turn."):
            return
        if kind == "turn.started":
            followed.start, followed.resumed_start = None, False
        if followed.answer.take(frame):
            followed.frames.put_nowait(frame)

    def _fail_all(self, error: ApiError) -> None:
        for followed in self._followed.values():
            followed.frames.put_nowait(error)
