"""The WebSocket transport: frames in, turn events out, one connection's bookkeeping.

Everything about turns is the engine's; this module authenticates the
socket, parses frames into requests, relays events, and keeps the follower
tasks of its own connection so it can detach them when the socket closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from server.auth import bearer_token
from server.codec import dumps
from server.config import Settings
from server.errors import (
    DomainError,
    Flooding,
    MalformedJson,
    PayloadTooLarge,
    TooManyConnections,
    TooManyTurns,
    Unauthorized,
    ValidationFailed,
)
from server.events import TurnEvent
from server.identity import Identity
from server.limits import TokenBucket
from server.origins import check_origin
from server.schemas import AuthFrame, TurnCancel, TurnResume, TurnStart, parse_json, parse_object
from server.sync.cursor import MARGIN, SyncCursor
from server.sync.inbox import Inbox
from server.transport.lingering import LingeringWebSocket
from server.transport.problems import domain_error, error_frame
from server.turns.engine import TurnEngine
from server.typedefs import (
    authenticator_key,
    engine_key,
    feed_key,
    identity_key,
    limits_key,
    settings_key,
    ws_connections_key,
)

log = logging.getLogger(__name__)

CLOSE_SERVICE_RESTART = 1012  # RFC 6455: the client should reconnect, and resume
# At shutdown, how long a socket's followers get to send their final events.
FLUSH_SECONDS = 2.0
CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455: too many connections of this user
CLOSE_UNAUTHORIZED = 4401
CLOSE_AUTH_TIMEOUT = 4408
# aiohttp closes the socket above this size; below it, our own limit answers
# with an `error` frame and keeps the connection.
HARD_FRAME_LIMIT = 4 * 1024 * 1024
HEARTBEAT_SECONDS = 25.0


async def websocket(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[settings_key]
    # Before the upgrade: a refusal is an ordinary 403 problem+json, not a frame.
    check_origin(request, settings)
    ws = LingeringWebSocket(heartbeat=HEARTBEAT_SECONDS, frame_limit=HARD_FRAME_LIMIT)
    await ws.prepare(request)
    try:
        identity = await _authenticate(request, ws, settings)
        if identity is None:
            return ws
        request[identity_key] = identity  # for the access log
        try:
            async with request.app[limits_key].connection(identity):
                await _serve(request, ws, identity, settings)
        except TooManyConnections as error:
            await _refuse(ws, error, CLOSE_TRY_AGAIN_LATER)
    finally:
        await ws.linger()  # after a refused frame: until the client has read our close
    return ws


async def _serve(
    request: web.Request, ws: web.WebSocketResponse, identity: Identity, settings: Settings
) -> None:
    feed = request.app[feed_key]
    connection = Connection(ws, identity, request.app[engine_key], settings)
    # Told from here on: changes made elsewhere reach this socket, the ones before are
    # `/api/sync?since=<cursor>`'s (the margin repeats the last seconds').
    feed.attach(identity, connection.inbox)
    ready = {"type": "ready", "user_id": identity.user_id, "tenant_id": identity.tenant_id}
    ready["cursor"] = SyncCursor(datetime.now(UTC) - MARGIN).encode()
    await ws.send_str(dumps(ready))
    connections = request.app[ws_connections_key]
    connections.add(connection)
    pushing = asyncio.create_task(connection.push(), name="ws-push")
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await connection.handle(message.data)
            elif message.type == WSMsgType.BINARY:
                await connection.send_error(
                    ValidationFailed("Send text frames holding JSON objects")
                )
    finally:
        feed.detach(identity, connection.inbox)
        pushing.cancel()
        connections.discard(connection)
        await connection.detach_all()
        with contextlib.suppress(asyncio.CancelledError):
            await pushing


async def _authenticate(
    request: web.Request, ws: web.WebSocketResponse, settings: Settings
) -> Identity | None:
    """The upgrade's Authorization header, else a first `auth` frame within the time limit."""
    authenticator = request.app[authenticator_key]
    try:
        token = bearer_token(request)
        if token is None:
            try:
                message = await ws.receive(timeout=settings.ws_auth_timeout_seconds)
            except TimeoutError:
                await _refuse(ws, Unauthorized("No auth frame in time"), CLOSE_AUTH_TIMEOUT)
                return None
            if message.type != WSMsgType.TEXT:
                return None
            token = _auth_token(message.data)
        return await authenticator.identify(token)
    except DomainError as error:
        await _refuse(ws, Unauthorized(error.detail), CLOSE_UNAUTHORIZED)
        return None


def _auth_token(data: str) -> str:
    try:
        return parse_json(AuthFrame, data).token
    except DomainError:
        raise Unauthorized('The first frame must be {"type": "auth", "token": ...}') from None


async def _refuse(ws: web.WebSocketResponse, error: DomainError, code: int) -> None:
    with contextlib.suppress(ConnectionError):
        await ws.send_str(dumps(error_frame(error)))
    await ws.close(code=code, message=error.code.encode())


class Connection:
    """One socket's turns: who follows what, and how fast frames may come; and the changes
    pushed to it from the user's other devices."""

    def __init__(
        self, ws: web.WebSocketResponse, identity: Identity, engine: TurnEngine, settings: Settings
    ) -> None:
        self.id = uuid.uuid4().hex
        self.inbox = Inbox(self.id)
        self._ws = ws
        self._identity = identity
        self._engine = engine
        self._settings = settings
        self._followers: dict[str, asyncio.Task[None]] = {}
        self._started: set[str] = set()  # turns started here and not yet seen ending
        self._bucket = TokenBucket(settings.ws_frames_per_second, settings.ws_frame_burst)
        self._frame_limit = settings.max_message_chars * 4 + 4096

    async def handle(self, data: str) -> None:
        turn_id: str | None = None
        try:
            if self._bucket.take():
                raise Flooding("Too many frames; slow down")
            if len(data) > self._frame_limit:
                raise PayloadTooLarge(f"Frames are limited to {self._frame_limit} bytes")
            frame = _parse_frame(data)
            turn_id = frame.get("turn_id") if isinstance(frame.get("turn_id"), str) else None
            await self._dispatch(frame)
        except DomainError as error:
            await self.send_error(error, turn_id)
        except Exception as error:
            # Caught here, not left to aiohttp: past the upgrade, its error page
            # would be written into the WebSocket stream and break the connection.
            await self.send_error(domain_error(error, "a WebSocket frame"), turn_id)

    async def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame.pop("type", None)
        if not isinstance(kind, str):  # checked here, after turn_id was read for the error
            raise ValidationFailed(
                'A frame needs a string "type"', [{"field": "type", "message": "required string"}]
            )
        if kind == "ping":
            await self._send({"type": "pong"})
        elif kind == "turn.start":
            request = parse_object(TurnStart, frame)
            limit = self._settings.max_turns_per_connection
            if sum(1 for t in self._followers.values() if not t.done()) >= limit:
                raise TooManyTurns(f"At most {limit} turns may run at once on one connection")
            events = await self._engine.start(self._identity, request, origin=self.id)
            self._started.add(request.turn_id)
            self._follow(request.turn_id, events)
        elif kind == "turn.cancel":
            cancel = parse_object(TurnCancel, frame)
            await self._engine.cancel(self._identity, cancel.turn_id)
        elif kind == "turn.resume":
            resume = parse_object(TurnResume, frame)
            self._follow(
                resume.turn_id,
                await self._engine.resume(self._identity, resume.turn_id, resume.after_seq),
            )
        elif kind == "auth":
            raise ValidationFailed("This connection is already authenticated")
        else:
            raise ValidationFailed(
                f"Unknown frame type {kind!r}: expected turn.start, turn.cancel, "
                "turn.resume or ping",
                [{"field": "type", "message": "unknown type"}],
            )

    @property
    def following(self) -> int:
        """Turns this socket follows now; finished followers are dropped as they end."""
        return len(self._followers)

    def _follow(self, turn_id: str, events: AsyncIterator[TurnEvent]) -> None:
        previous = self._followers.pop(turn_id, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(self._relay(turn_id, events), name=f"ws-follow:{turn_id}")
        self._followers[turn_id] = task

    async def _relay(self, turn_id: str, events: AsyncIterator[TurnEvent]) -> None:
        # `send_str` waits while the socket is backed up; meanwhile the turn
        # log merges the deltas this follower has not taken yet.
        try:
            async with contextlib.aclosing(events):  # type: ignore[type-var]
                async for event in events:
                    if not await self._send(event.to_wire()):
                        return
                    if event.terminal:
                        self._started.discard(turn_id)
        except DomainError as error:  # following failed; the turn itself may run on
            await self.send_error(error, turn_id)
        finally:
            if self._followers.get(turn_id) is asyncio.current_task():
                del self._followers[turn_id]

    async def push(self) -> None:
        """Send the changes made on the user's other devices, as they come.

        One at a time: while the socket is backed up, the inbox coalesces what
        waits (bounded), as a turn's log merges the deltas a slow follower has
        not taken."""
        while await self._send(await self.inbox.next()):
            pass

    async def send_error(self, error: DomainError, turn_id: str | None = None) -> None:
        await self._send(error_frame(error, turn_id))

    async def _send(self, frame: dict[str, Any]) -> bool:
        if self._ws.closed:
            return False
        try:
            await self._ws.send_str(dumps(frame))
        except ConnectionError:
            return False
        return True

    async def close_for_restart(self) -> None:
        """Shutdown: let the followers send the final events they have, then close with 1012."""
        followers = [task for task in self._followers.values() if not task.done()]
        if followers:
            await asyncio.wait(followers, timeout=FLUSH_SECONDS)
        await self._ws.close(code=CLOSE_SERVICE_RESTART, message=b"service restart")

    async def detach_all(self) -> None:
        """The socket is gone: stop following; the turns run on unless ON_DISCONNECT says not."""
        for turn_id in self._started:  # first: the handler itself may be being cancelled
            self._engine.abandon(self._identity, turn_id)
        followers = list(self._followers.values())
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
        self._followers.clear()


def _parse_frame(data: str) -> dict[str, Any]:
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise MalformedJson("The frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise ValidationFailed('A frame must be a JSON object with a "type"')
    return frame
