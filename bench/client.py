"""A client's view of a turn, timed: the WebSocket and SSE transports feed one clock.

Every wait has a limit: a hung service makes a turn end as `timeout` in the
report instead of stalling the run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from bench.target import Target

TERMINAL_TYPES = frozenset({"turn.done", "turn.cancelled", "turn.error", "error"})
FRAME_TIMEOUT = 10.0
TURN_TIMEOUT = 30.0
# More frames than any scenario's answer can produce (one per upstream chunk at worst).
MAX_FRAMES_PER_TURN = 100_000

Frame = dict[str, Any]


class BenchError(Exception):
    """The service answered in a way no scenario can measure (refused socket, bad status)."""


@dataclass(slots=True)
class TurnTiming:
    """One turn as the client saw it; times are seconds after the request was sent."""

    turn_id: str
    outcome: str = "timeout"  # the terminal event's type, `error`, `http_<status>` or `timeout`
    started_s: float | None = None
    first_delta_s: float | None = None
    last_delta_s: float | None = None
    end_s: float | None = None
    delta_frames: int = 0
    text: str = ""
    final_text: str | None = None  # the content of the message the terminal event carries
    final_status: str | None = None  # and its status
    conversation_id: str | None = None
    error_code: str | None = None

    @property
    def completed(self) -> bool:
        return self.outcome == "turn.done" and self.text == self.final_text


class TurnClock:
    """Stamps a turn's events against the moment its request left the client."""

    def __init__(self, turn_id: str | None = None) -> None:
        self.timing = TurnTiming(turn_id or str(uuid.uuid4()))
        self._sent_at = time.perf_counter()
        self._parts: list[str] = []

    @property
    def turn_id(self) -> str:
        return self.timing.turn_id

    def mark_sent(self) -> None:
        self._sent_at = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._sent_at

    def observe(self, frame: Frame) -> bool:
        """Take one frame; True once it ends the turn. Other turns' frames are ignored."""
        elapsed = self.elapsed()
        if frame.get("turn_id", self.turn_id) != self.turn_id:
            return False
        kind = frame.get("type")
        timing = self.timing
        if kind == "turn.started":
            timing.started_s = elapsed
            timing.conversation_id = frame.get("conversation_id")
        elif kind == "turn.delta":
            if timing.first_delta_s is None:
                timing.first_delta_s = elapsed
            timing.last_delta_s = elapsed
            timing.delta_frames += 1
            self._parts.append(frame.get("text", ""))
        if kind not in TERMINAL_TYPES:
            return False
        timing.outcome, timing.end_s = str(kind), elapsed
        timing.text = "".join(self._parts)
        message = frame.get("message") or frame.get("partial") or {}
        timing.final_text = message.get("content")
        timing.final_status = message.get("status")
        timing.error_code = frame.get("code")
        return True


class BenchSocket:
    """One authenticated `/ws` connection running turns one after another."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, target: Target, user: str) -> BenchSocket:
        ws = await session.ws_connect(target.url("/ws"), headers=target.auth(user))
        socket = cls(ws)
        ready = await socket.recv()
        if ready.get("type") != "ready":
            await ws.close()
            raise BenchError(f"expected a ready frame, got {ready}")
        return socket

    async def send(self, frame: Frame) -> None:
        await self._ws.send_str(orjson.dumps(frame).decode())

    async def recv(self) -> Frame:
        message = await self._ws.receive(timeout=FRAME_TIMEOUT)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise BenchError(f"the socket ended: {message.type.name} {message.data!r}")
        frame: Frame = orjson.loads(message.data)
        return frame

    async def start(self, content: str, conversation_id: str | None = None) -> TurnClock:
        clock = TurnClock()
        frame: Frame = {"type": "turn.start", "turn_id": clock.turn_id, "content": content}
        if conversation_id is not None:
            frame["conversation_id"] = conversation_id
        clock.mark_sent()
        await self.send(frame)
        return clock

    async def follow(self, clock: TurnClock, *, until_first_delta: bool = False) -> TurnTiming:
        """Read frames until the turn ends (or, if asked, until its first delta)."""
        try:
            async with asyncio.timeout(TURN_TIMEOUT):
                for _ in range(MAX_FRAMES_PER_TURN):
                    if clock.observe(await self.recv()):
                        break
                    if until_first_delta and clock.timing.first_delta_s is not None:
                        break
        except TimeoutError:
            clock.timing.outcome = "timeout"
        return clock.timing

    async def turn(self, content: str, conversation_id: str | None = None) -> TurnTiming:
        return await self.follow(await self.start(content, conversation_id))

    async def close(self) -> None:
        await self._ws.close()


async def sse_turn(
    session: aiohttp.ClientSession,
    target: Target,
    headers: dict[str, str],
    content: str,
    conversation_id: str | None = None,
) -> TurnTiming:
    """One turn over `POST /api/turns`, timed like a WS turn."""
    clock = TurnClock()
    body: Frame = {"turn_id": clock.turn_id, "content": content}
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    try:
        async with asyncio.timeout(TURN_TIMEOUT):
            clock.mark_sent()
            async with session.post(target.url("/api/turns"), json=body, headers=headers) as answer:
                if answer.status != 200:
                    clock.timing.outcome = f"http_{answer.status}"
                    clock.timing.error_code = (await answer.json(content_type=None)).get("code")
                    return clock.timing
                received = 0
                async for event in sse_data(answer.content):
                    received += 1
                    if clock.observe(event) or received >= MAX_FRAMES_PER_TURN:
                        break
    except TimeoutError:
        clock.timing.outcome = "timeout"
    return clock.timing


async def sse_data(stream: aiohttp.StreamReader) -> AsyncIterator[Frame]:
    """The JSON `data` of each event in a text/event-stream; comments (pings) skipped."""
    lines: list[str] = []
    async for raw in stream:
        line = raw.decode().rstrip("\r\n")
        if line:
            name, _, value = line.partition(":")
            if name == "data":
                lines.append(value.removeprefix(" "))
        elif lines:
            yield orjson.loads("\n".join(lines))
            lines = []
