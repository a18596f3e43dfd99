"""Running turns' events on Redis Streams, one stream per turn, written in batches.

`append` is on the per-token path: it only queues the event (no await, no
round trip). One writer task sends everything queued, for every turn of the
process, as one command: a small Lua script that runs the `XADD`s (with
`MAXLEN ~`) and the `EXPIRE`s due, the events packed into one argument.
Commands leave at most every `LINGER_SECONDS` (5 ms): the events of that
interval gather into one, so a quiet turn's event leaves at once and a busy
process sends ~200 commands a second, however many turns run. (A pipeline of
`XADD`s cost the service 21 µs of CPU an event; a script with three arguments
an event, sent as soon as the last returned, 11-15 µs; this, about 7, for
~2.5 ms more latency to followers on other processes: `bench/README.md`.)

An entry's id is `0-<seq>`: the stream is numbered exactly like the owner's
log, so a reader resumes with `XREAD` from `0-<after_seq>`, and a hole (a
batch lost while Redis was away, entries trimmed or expired) shows as a seq
that does not follow, which readers treat as "ask MongoDB instead".
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Callable
from typing import Any, cast

import orjson
from redis.exceptions import RedisError
from redis.typing import EncodableT

from server.cluster.connection import RedisLink
from server.events import EventType, TurnEvent
from server.identity import Identity

log = logging.getLogger(__name__)

# At most about this many events per turn (`MAXLEN ~`, trimmed in whole nodes):
# more than any answer of MAX_OUTPUT_TOKENS has deltas, so a reader can start
# from seq 0; a longer turn's oldest events go, and a resume from before them
# is answered from MongoDB.
STREAM_MAX_EVENTS = 10_000
KEY_PREFIX = "chat:turn:"
# Events a command at most: a backlog (Redis slow for a moment) goes in several,
# so no one script holds Redis for long.
BATCH_MAX = 1000
# The least time between two commands: what a follower elsewhere may wait at most
# for an event, for far fewer (larger) commands than one per round trip.
LINGER_SECONDS = 0.005
# KEYS: each stream of the batch, once. ARGV: MAXLEN, TTL, the batch's events as one
# string, each a header line `<key index> <seq> <type> <payload bytes>` and then its
# JSON payload (one argument to pack and parse, not three an event), and the indexes
# of the streams whose expiry is renewed.
# `pcall`: an event refused (none should be) is a hole readers handle, not a lost batch.
APPEND_SCRIPT = """
local maxlen, ttl, events = ARGV[1], ARGV[2], ARGV[3]
local at, count = 1, 0
while at <= #events do
  local line_end = string.find(events, '\\n', at, true)
  local key, seq, kind, size = string.match(
    string.sub(events, at, line_end - 1), '^(%d+) (%d+) (%S+) (%d+)$')
  local payload_end = line_end + tonumber(size)
  local payload = string.sub(events, line_end + 1, payload_end)
  redis.pcall('XADD', KEYS[tonumber(key)], 'MAXLEN', '~', maxlen, '0-' .. seq,
    't', kind, 'p', payload)
  at = payload_end + 1
  count = count + 1
end
for index in string.gmatch(ARGV[4], '%d+') do
  redis.pcall('EXPIRE', KEYS[tonumber(index)], ttl)
end
return count
"""

Entry = tuple[bytes, dict[bytes, bytes]]


def stream_key(identity: Identity, turn_id: str) -> str:
    """A turn's stream, found from what a request names (no database read), hashed so
    that no client-chosen text goes into a key."""
    name = f"{identity.tenant_id}\0{identity.user_id}\0{turn_id}".encode()
    return f"{KEY_PREFIX}{hashlib.blake2b(name, digest_size=16).hexdigest()}"


def decode(turn_id: str, entry: Entry) -> TurnEvent:
    entry_id, fields = entry
    seq = int(entry_id.split(b"-", 1)[1])
    payload: dict[str, Any] = orjson.loads(fields[b"p"])
    return TurnEvent(cast(EventType, fields[b"t"].decode()), turn_id, seq, payload)


class StreamPublisher:
    def __init__(self, link: RedisLink, *, retention_seconds: float) -> None:
        self._link = link
        self._ttl = max(1, math.ceil(retention_seconds))
        self._queued: list[tuple[str, TurnEvent]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._append = link.client.register_script(APPEND_SCRIPT)
        # When each stream's expiry was last renewed. Renewed when a stream starts, at
        # its turn's end, and every third of the TTL between: an `EXPIRE` a stream every
        # few seconds rather than one an event (a stream then outlives its turn by the
        # retention, as the owner holds the turn in memory).
        self._renewed: dict[str, float] = {}

    def mirror(self, identity: Identity, turn_id: str) -> Callable[[TurnEvent], None]:
        """The `TurnLog` mirror of one turn: each event it publishes is queued for its stream."""
        key = stream_key(identity, turn_id)

        def append(event: TurnEvent) -> None:
            # Redis away: dropped. Readers see the hole and read MongoDB instead.
            if self._link.available:
                self._queued.append((key, event))
                self._wake.set()
            elif event.terminal:
                self._renewed.pop(key, None)

        return append

    def start(self) -> None:
        self._task = asyncio.create_task(self._write(), name="redis-streams")

    async def close(self) -> None:
        """Send what is queued (the last turns' endings), then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        sent_at = -LINGER_SECONDS
        while not self._closing or self._queued:
            await self._wake.wait()
            self._wake.clear()
            wait = sent_at + LINGER_SECONDS - loop.time()
            if wait > 0 and not self._closing:
                await asyncio.sleep(wait)
            sent_at = loop.time()
            batch, self._queued = self._queued[:BATCH_MAX], self._queued[BATCH_MAX:]
            if self._queued:
                self._wake.set()
            if batch:
                await self._send(batch)

    async def _send(self, batch: list[tuple[str, TurnEvent]]) -> None:
        keys: dict[str, int] = {}  # each stream once, numbered from 1 as Lua counts
        parts: list[bytes] = []
        renew: dict[int, None] = {}
        now, renew_every = asyncio.get_running_loop().time(), self._ttl / 3
        for key, event in batch:
            index = keys.setdefault(key, len(keys) + 1)
            payload = orjson.dumps(event.payload)
            parts.append(b"%d %d %s %d\n" % (index, event.seq, event.type.encode(), len(payload)))
            parts.append(payload)
            if event.terminal:
                renew[index] = None
                self._renewed.pop(key, None)
            elif now - self._renewed.get(key, -math.inf) >= renew_every:
                renew[index] = None
                self._renewed[key] = now
        renewals = b" ".join(b"%d" % index for index in renew)
        args: list[EncodableT] = [STREAM_MAX_EVENTS, self._ttl, b"".join(parts), renewals]
        try:
            await self._append(keys=list(keys), args=args)
        except RedisError as error:  # lost: the hole sends readers to MongoDB
            self._link.failed(error)
            self._renewed.clear()  # Redis may have lost its streams too: renew all anew
        except Exception:  # a bug of ours: this batch is lost, never the writer
            log.exception("writing %d event(s) to Redis failed", len(batch))
