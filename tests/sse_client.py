"""A small client-side reader of the SSE wire format, for the SSE transport's tests.

Parsed here by hand from the response bytes, line by line, so the tests check
what is really on the wire rather than what a library makes of it. Every event
is checked against the AsyncAPI document.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.conftest import RECV_TIMEOUT
from tests.contract_check import check_sse

TERMINAL = ("turn.done", "turn.cancelled", "turn.error")


@dataclass(frozen=True)
class SseEvent:
    event: str | None
    id: str | None
    data: dict[str, Any]


class SseReader:
    """Reads one SSE response event by event; comment lines (`: ping`) are skipped."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = RECV_TIMEOUT) -> SseEvent | None:
        """The next event, or None at the end of the stream."""
        fields: dict[str, list[str]] = {}
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    return None
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if fields:
                        event = SseEvent(
                            event=fields.get("event", [None])[-1],
                            id=fields.get("id", [None])[-1],
                            data=json.loads("\n".join(fields["data"])),
                        )
                        check_sse(event.event, event.id, event.data)
                        return event
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                fields.setdefault(name, []).append(value.removeprefix(" "))

    async def until(self, *types: str, timeout: float = RECV_TIMEOUT) -> list[SseEvent]:
        """Events up to and including the first of one of `types` (default: a terminal one)."""
        wanted = types or TERMINAL
        events: list[SseEvent] = []
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next()
                assert event is not None, f"stream ended before {wanted}: {events}"
                events.append(event)
                if event.event in wanted:
                    return events


def sse_text(events: list[SseEvent]) -> str:
    return "".join(e.data["text"] for e in events if e.event == "turn.delta")
