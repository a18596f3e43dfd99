"""A turn over Server-Sent Events, re-attached with `Last-Event-ID` after a dropped stream.

For networks whose proxies break WebSockets. `POST /api/turns` starts the turn
and streams its events; when the stream breaks, `GET /api/turns/{id}/events`
with `Last-Event-ID: <last seq taken>` continues after it (what a browser's
EventSource does by itself). A POST that failed before its stream opened may
or may not have started the turn: re-attaching says (404: it did not), and the
POST is sent again, safely, since its `turn_id` is its idempotency key.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from chat_client.errors import ApiError
from chat_client.protocol import Answer, backoff, is_terminal

JSON = dict[str, Any]
GIVE_UP_AFTER = 8  # attempts in a row that bring nothing new


async def stream_turn(
    http: aiohttp.ClientSession, base_url: str, token: str, body: JSON
) -> AsyncIterator[JSON]:
    body = {"turn_id": str(uuid.uuid4()), **body}
    answer = Answer(body["turn_id"])
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    started = False  # the POST's stream opened: from now on, re-attach
    attempt = 0
    while True:
        taken = answer.last_seq
        try:
            if not started:
                request = http.post(f"{base_url}/api/turns", json=body, headers=headers)
            else:
                again = headers | {"Last-Event-ID": str(answer.last_seq)}
                request = http.get(f"{base_url}/api/turns/{answer.turn_id}/events", headers=again)
            async with request as response:
                if response.status == 404 and started and answer.last_seq == 0:
                    started = False  # the start never arrived: send it again
                    continue
                if response.status >= 400:
                    raise ApiError.from_problem(response.status, await _json(response))
                started = True
                async for kind, data in _events(response):
                    if kind == "error":
                        raise ApiError.from_frame(data)
                    if answer.take(data):
                        yield data
                    if is_terminal(data):
                        return
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError):
            started = True  # whether the POST arrived is asked, not assumed
        attempt = 0 if answer.last_seq > taken else attempt + 1
        if attempt > GIVE_UP_AFTER:
            raise ApiError(0, "disconnected", "The service cannot be reached")
        await asyncio.sleep(backoff(max(attempt, 1)))


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, JSON]]:
    """(event, data) of each event in a text/event-stream body; `: ping` comments skipped."""
    kind = "message"
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield kind, json.loads("\n".join(data))
            kind, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)


async def _json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None
