"""The load generator's clients: one stream each, on its own connection.

Three ways to read the same stamped answer: straight from the fake upstream
(`POST /v1/messages`, the baseline: what a client would see with no relay),
through the service's WebSocket, and through its SSE endpoint. Each records
every token's latency (its arrival on this host's monotonic clock minus the
stamp the fake wrote into its text), so the relay and the baseline are
measured by the same code on the same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.stamps import REQUEST_ARRIVAL, TOKEN, StreamSpec, now_us
from bench.target import Target, fresh_user

ANTHROPIC_HEADERS = {
    "x-api-key": "bench",
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}
TERMINAL = {"turn.done": "done", "turn.cancelled": "cancelled", "turn.error": "error"}
LINGER_SECONDS = 0.3  # after turn.cancelled, how long to watch for stray deltas


@dataclass(slots=True)
class StreamResult:
    """One stream as its client saw it; times in µs of CLOCK_MONOTONIC."""

    key: str
    outcome: str = "not started"  # done, cancelled, error:<code>, timeout, failed:<reason>
    sent_us: int | None = None  # the request (POST or turn.start) left the client
    started_us: int | None = None  # turn.started arrived (relay only)
    upstream_arrival_us: int | None = None  # the fake received its request
    first_token_us: int | None = None  # the first token arrived here
    first_token_latency_us: int | None = None
    last_token_us: int | None = None
    latencies_us: list[int] = field(default_factory=list)
    tokens: int = 0
    in_order: bool = True  # token indexes arrived 0, 1, 2... with none missing
    cancel_sent_us: int | None = None
    ended_us: int | None = None  # the terminal frame arrived
    tokens_after_cancel_sent: int = 0  # relayed tokens stamped after the cancel left
    deltas_after_end: int = 0  # delta frames after the terminal one: should be none

    def absorb(self, text: str, arrival_us: int) -> None:
        """Every stamp in a (possibly merged) delta's text."""
        for match in TOKEN.finditer(text):
            index, stamp = int(match.group(1)), int(match.group(2))
            if index != self.tokens:
                self.in_order = False
            self.tokens += 1
            latency = arrival_us - stamp
            self.last_token_us = arrival_us
            self.latencies_us.append(latency)
            if self.cancel_sent_us is not None and stamp > self.cancel_sent_us:
                self.tokens_after_cancel_sent += 1
            if self.first_token_us is None:
                self.first_token_us, self.first_token_latency_us = arrival_us, latency
                found = REQUEST_ARRIVAL.search(text)
                self.upstream_arrival_us = int(found.group(1)) if found else None


def new_session() -> aiohttp.ClientSession:
    """No pool limit: every concurrent stream gets a connection of its own."""
    connector = aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


async def direct_stream(
    session: aiohttp.ClientSession, target: Target, spec: StreamSpec, result: StreamResult
) -> None:
    """The baseline: the same stream read from the fake upstream with no relay between."""
    body = {
        "model": "claude-bench",
        "max_tokens": 4096,
        "stream": True,
        "messages": [{"role": "user", "content": spec.prompt()}],
    }
    result.sent_us = now_us()
    async with session.post(
        f"{target.upstream_url}/v1/messages", data=orjson.dumps(body), headers=ANTHROPIC_HEADERS
    ) as answer:
        if answer.status != 200:
            result.outcome = f"failed:http_{answer.status}"
            return
        async for line in answer.content:
            arrival = now_us()
            if not line.startswith(b"data: "):
                continue
            event = orjson.loads(line[6:])
            if event["type"] == "content_block_delta":
                result.absorb(event["delta"]["text"], arrival)
            elif event["type"] == "message_stop":
                result.outcome, result.ended_us = "done", arrival
                return


async def sse_stream(
    session: aiohttp.ClientSession, target: Target, spec: StreamSpec, result: StreamResult
) -> None:
    """One turn over `POST /api/turns`, its events read as they come."""
    body = {"turn_id": str(uuid.uuid4()), "content": spec.prompt()}
    headers = target.auth(fresh_user("sse"))
    result.sent_us = now_us()
    async with session.post(target.url("/api/turns"), json=body, headers=headers) as answer:
        if answer.status != 200:
            result.outcome = f"failed:http_{answer.status}"
            return
        async for arrival, frame in _sse_frames(answer.content):
            if _observe(result, frame, arrival):
                return


async def _sse_frames(stream: aiohttp.StreamReader) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    async for line in stream:
        if line.startswith(b"data: "):
            arrival = now_us()
            yield arrival, orjson.loads(line[6:])


class RelaySocket:
    """One authenticated `/ws` connection, opened before the turn so that a workload
    can connect all its clients first and start every turn at once."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, target: Target) -> RelaySocket:
        ws = await session.ws_connect(
            target.ws_url(), headers=target.auth(fresh_user("ws")), autoping=True
        )
        ready = await ws.receive(timeout=30)
        if ready.type != aiohttp.WSMsgType.TEXT or orjson.loads(ready.data)["type"] != "ready":
            await ws.close()
            raise ConnectionError(f"no ready frame: {ready.type.name} {ready.data!r}")
        return cls(ws)

    async def stream(
        self, spec: StreamSpec, result: StreamResult, cancel_after: float | None = None
    ) -> None:
        """Run one turn; with `cancel_after`, cancel it that long after its first token."""
        turn_id = str(uuid.uuid4())
        frame = {"type": "turn.start", "turn_id": turn_id, "content": spec.prompt()}
        result.sent_us = now_us()
        await self.ws.send_str(orjson.dumps(frame).decode())
        cancel_at: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            # Checked before waiting, never left to the wait's time-out alone: aiohttp takes
            # `timeout=0` for "no time-out", so a token arriving just as the cancel fell
            # due once left the cancel unsent for good (3 of 50 in cancel-200).
            if cancel_at is not None and loop.time() >= cancel_at:
                cancel_at = None
                result.cancel_sent_us = now_us()
                await self.ws.send_str(
                    orjson.dumps({"type": "turn.cancel", "turn_id": turn_id}).decode()
                )
            wait = None if cancel_at is None else cancel_at - loop.time()
            try:
                message = await self.ws.receive(timeout=wait)
            except TimeoutError:
                continue  # the cancel is due: sent at the top of the loop
            arrival = now_us()
            if message.type != aiohttp.WSMsgType.TEXT:
                result.outcome = f"failed:{message.type.name.lower()}"
                return
            had_token = result.first_token_us is not None
            if _observe(result, orjson.loads(message.data), arrival):
                break
            if cancel_after is not None and not had_token and result.first_token_us is not None:
                cancel_at = loop.time() + cancel_after
        if result.cancel_sent_us is not None:
            await self._count_stray_deltas(result)

    async def _count_stray_deltas(self, result: StreamResult) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LINGER_SECONDS):
                async for message in self.ws:
                    if message.type == aiohttp.WSMsgType.TEXT and '"turn.delta"' in message.data:
                        result.deltas_after_end += 1

    async def close(self) -> None:
        await self.ws.close()


def _observe(result: StreamResult, frame: dict[str, Any], arrival: int) -> bool:
    """Take one relayed event; True once the turn has ended."""
    kind = frame.get("type")
    if kind == "turn.delta":
        result.absorb(frame["text"], arrival)
    elif kind == "turn.started":
        result.started_us = arrival
    elif kind in TERMINAL or kind == "error":
        outcome = TERMINAL.get(str(kind), "error")
        result.outcome = f"error:{frame.get('code')}" if outcome == "error" else outcome
        result.ended_us = arrival
        return True
    return False
