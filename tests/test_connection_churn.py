"""200 connections opening and closing in a loop: nothing leaks, nothing is lost.

Four kinds of client come and go, 50 at a time, at each user's connection
limit: one that closes cleanly, one that starts a turn and hangs up before
reading it, one that drops its TCP connection without a close frame right
after the upgrade, and one that posts an SSE turn and walks away after the
first event. Between rounds the service must be back at zero open
connections; a connection it failed to release would be a `too_many_connections`
in the next round. At the end every turn begun is stored whole and finished.
"""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any

from tests.api_client import SseReader
from tests.conftest import Service, eventually, make_token, new_turn_id
from tests.test_metrics import scrape

ROUNDS, USERS, PER_USER = 4, 10, 5  # 50 at once, 200 in all
KINDS = ("clean", "turn_then_gone", "tcp_dropped", "sse_walked_away")


async def test_200_connections_opening_and_closing_leave_nothing_behind(service: Service) -> None:
    await service.reconfigure(
        MAX_CONNECTIONS_PER_USER=str(PER_USER), MAX_TURNS_PER_USER="100", TURNS_PER_MINUTE="100"
    )
    turns: dict[str, str] = {}  # turn_id -> the content it was asked

    async def client(number: int) -> None:
        user, kind = f"churn{number % USERS}", KINDS[number % len(KINDS)]
        if kind == "tcp_dropped":
            await _upgrade_then_drop(service, user)
            return
        content = f"Question {number}"
        turn_id = new_turn_id()
        if kind == "sse_walked_away":
            body = {"turn_id": turn_id, "content": content}
            async with service.http.post(
                "/api/turns", json=body, headers=service.headers(user)
            ) as response:
                assert response.status == 200, await response.text()
                first = await SseReader(response).next()
                assert first is not None and first.data["type"] == "turn.started"
            turns[turn_id] = content
            return
        ws = await service.ws(user)  # asserts the `ready` frame: no connection refused
        if kind == "turn_then_gone":
            await ws.send({"type": "turn.start", "turn_id": turn_id, "content": content})
            turns[turn_id] = content
        await ws.close()

    for round_ in range(ROUNDS):
        numbers = range(round_ * USERS * PER_USER, (round_ + 1) * USERS * PER_USER)
        await asyncio.gather(*(client(number) for number in numbers))
        assert await eventually(lambda: _open_connections_are(service, 0), timeout=15)

    assert await eventually(lambda: _running_turns_are(service, 0), timeout=15)
    # Every turn begun ran to its end and is stored whole, its client gone or not.
    stored = await service.db.messages.find({"role": "assistant"}).to_list()
    by_turn = {message["turn_id"]: message for message in stored}
    assert set(by_turn) == set(turns)
    for turn_id, message in by_turn.items():
        assert message["status"] == "complete", message
        assert message["content"] == f"Echo: {turns[turn_id]}", message
    # And the service serves on: each user may open its whole allowance again.
    allowance = [f"churn{u}" for u in range(USERS) for _ in range(PER_USER)]
    sockets = await asyncio.gather(*(service.ws(user) for user in allowance))
    assert (await sockets[0].turn("Still there?"))[-1]["type"] == "turn.done"
    await asyncio.gather(*(ws.close() for ws in sockets))


async def _upgrade_then_drop(service: Service, user: str) -> None:
    """A WebSocket upgrade answered 101, then the TCP connection closed with no close frame."""
    url = service.http.make_url("/ws")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {make_token(user)}\r\n\r\n"
        ).encode()
    )
    status = await reader.readline()
    assert status.startswith(b"HTTP/1.1 101"), status
    writer.transport.abort()  # gone: no close frame, no FIN handshake wait


async def _open_connections_are(service: Service, count: int) -> bool:
    samples: dict[Any, float] = await scrape(service)
    return (
        samples["chat_ws_connections_open", ()] == count
        and samples["chat_sse_streams_open", ()] == count
    )


async def _running_turns_are(service: Service, count: int) -> bool:
    return (await scrape(service))["chat_turns_running", ()] == count
