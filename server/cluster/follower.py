"""Following one turn's stream from any `seq`, from any process.

`StreamFollower.events()` yields the owner's events with their own `seq`s and
payloads: `XREAD` from `0-<after_seq>` returns what is stored at once, then
blocks for what comes. Deltas that gathered while the reader was busy
(a slow socket) are merged into one, as the owner's log does.

It stops early, without the terminal event, whenever the stream cannot give
a correct continuation: Redis is away, the next event is not there (trimmed,
expired, lost while Redis was away, never written), or the turn ended in
storage with no ending on the stream (its owner died). `ended` then stays
false and `cursor` is the last `seq` yielded: the caller carries on from
MongoDB (snapshot mode) from there, so text is neither lost nor repeated.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

from redis.exceptions import RedisError

from server.cluster.connection import RedisLink
from server.cluster.streams import Entry, decode, stream_key
from server.events import TurnEvent, merge_deltas
from server.identity import Identity

# Below `connection.SOCKET_TIMEOUT_SECONDS`. Between quiet reads the turn's state
# is checked in storage, which is how a dead owner is noticed.
BLOCK_MILLISECONDS = 1000
READ_COUNT = 512
# How long a follower waits for the owner's latest events to reach the stream
# (they go in batches) before it takes the turn from storage instead.
CATCH_UP_SECONDS = 1.0

StillRunning = Callable[[], Awaitable[bool]]


class StreamFollower:
    def __init__(
        self,
        link: RedisLink,
        identity: Identity,
        turn_id: str,
        after_seq: int,
        *,
        running: bool,
        still_running: StillRunning,
    ) -> None:
        self._link = link
        self._key = stream_key(identity, turn_id)
        self._turn_id = turn_id
        self._still_running = still_running
        # Ended in storage when the follow began: the stream will not grow.
        self._final = not running
        self.cursor = after_seq
        self.ended = False

    async def events(self) -> AsyncIterator[TurnEvent]:
        try:
            async for event in self._read():
                yield event
        except RedisError as error:
            self._link.failed(error)

    async def _read(self) -> AsyncIterator[TurnEvent]:
        client = self._link.client
        first, last = await self._caught_up()
        if first is None or last is None or first.seq > self.cursor + 1:
            return  # never written here, expired, or trimmed past the follower
        if last.terminal and self.cursor >= last.seq:  # the follower has everything
            self.ended = True
            yield last  # the ending again, as the owner would send it
            return
        if self.cursor > last.seq:
            return  # a seq the turn has not reached: storage answers with a snapshot
        owner_gone = self._final
        while True:
            reply = await client.xread(  # RESP2: [[key, [(id, fields), ...]]]
                {self._key: f"0-{self.cursor}"},
                count=READ_COUNT,
                block=None if self._final else BLOCK_MILLISECONDS,
            )
            entries = cast(list[tuple[bytes, list[Entry]]], reply)[0][1] if reply else []
            if not entries:
                if owner_gone:
                    return  # ended in storage, never on the stream: storage has the ending
                owner_gone = not await self._still_running()  # one more read for the ending
                continue
            events = self._following([decode(self._turn_id, entry) for entry in entries])
            for event in merge_deltas(events):
                yield event
                self.cursor = event.seq
                if event.terminal:
                    self.ended = True
                    return
            if len(events) < len(entries):
                return  # a hole: storage continues from the cursor

    async def _caught_up(self) -> tuple[TurnEvent | None, TurnEvent | None]:
        """The stream's first and last events, once it reaches the follower's `seq`
        (a resume right after `turn.started` may come before the batch that has it)."""
        first, last = await self._bounds()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CATCH_UP_SECONDS
        while not self._final and (last is None or last.seq < self.cursor):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            newest = f"0-{last.seq if last else 0}"
            await self._link.client.xread(
                {self._key: newest}, count=1, block=int(remaining * 1000) + 1
            )
            first, last = await self._bounds()
        return first, last

    async def _bounds(self) -> tuple[TurnEvent | None, TurnEvent | None]:
        pipe = self._link.client.pipeline(transaction=False)
        pipe.xrange(self._key, "-", "+", count=1)
        pipe.xrevrange(self._key, "+", "-", count=1)
        heads: list[list[Entry]] = await pipe.execute()
        first, last = (decode(self._turn_id, h[0]) if h else None for h in heads)
        return first, last

    def _following(self, events: list[TurnEvent]) -> list[TurnEvent]:
        """The events that follow the cursor without a hole."""
        expected = self.cursor + 1
        for index, event in enumerate(events):
            if event.seq != expected:
                return events[:index]
            expected += 1
        return events
