"""The limits' counts in Redis, so that they hold across every process that shares it.

A place held (a connection, a running turn) is a member of a sorted set per
key, scored with the moment its lease ends; the process that holds it renews
its leases while it runs, so the places of a process that died without a
word (kill -9, a lost machine) are free again after `lease_seconds`. A start
rate is a token bucket in a hash. Each check is one Lua script, atomic in
Redis and on Redis's clock, so processes on machines whose clocks differ
still agree.

While Redis is away every count falls back to this process's memory
(`LocalCounters`: the limits become per process, as without Redis) and
comes back to Redis by itself; a place taken during the outage is given back
where it was taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.limits.counters import LocalCounters

log = logging.getLogger(__name__)

PREFIX = "chat:limits:"
LEASE_SECONDS = 30.0
FAILURES = (RedisError, OSError, TimeoutError)

# KEYS[1]: a sorted set of places. ARGV: limit, member, lease ms. 1 if taken, else 0.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
# KEYS[1]: a sorted set of places. The places whose lease runs.
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
# KEYS[1]: a sorted set. ARGV: lease ms, then this process's members: their leases renewed.
_RENEW = """
local t = redis.call('TIME')
local until_ = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 0
"""
# KEYS[1]: a bucket. ARGV: per minute (also the burst), mode: 1 take, 0 look, -1 give back.
# The seconds to wait until a start may be made, as a string (a Lua number would be cut).
_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local burst = tonumber(ARGV[1])
local rate = burst / 60
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(saved[1]) or burst
local stamp = tonumber(saved[2]) or now
tokens = math.min(burst, tokens + (now - stamp) * rate)
local mode = tonumber(ARGV[2])
local wait = 0
if mode == -1 then
  tokens = math.min(burst, tokens + 1)
elseif tokens < 1 then
  wait = (1 - tokens) / rate
elseif mode == 1 then
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return tostring(wait)
"""


class Link(Protocol):
    """What the counters need of the process's Redis link (`server.cluster.connection`)."""

    client: Redis

    @property
    def available(self) -> bool: ...

    def failed(self, error: BaseException) -> None: ...


class SharedCounters:
    def __init__(self, link: Link, *, lease_seconds: float = LEASE_SECONDS) -> None:
        self._link = link
        self._lease_ms = int(lease_seconds * 1000)
        self._local = LocalCounters()
        self._process = uuid.uuid4().hex[:12]
        self._serial = 0
        # Per key, the places this process holds, oldest first: a Redis member, or
        # None for one taken from memory while Redis was away.
        self._mine: dict[str, list[str | None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._renewing: asyncio.Task[None] | None = None
        client = link.client
        self._hold = client.register_script(_HOLD)
        self._count = client.register_script(_COUNT)
        self._renew = client.register_script(_RENEW)
        self._bucket = client.register_script(_BUCKET)

    def start(self) -> None:
        self._renewing = asyncio.create_task(self._renew_leases(), name="limits-renew")

    async def close(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def held(self, key: str) -> int:
        if self._link.available:
            try:
                return int(await self._count(keys=[PREFIX + key]))
            except FAILURES as error:
                self._link.failed(error)
        return await self._local.held(key)

    async def hold(self, key: str, limit: int) -> bool:
        if self._link.available:
            self._serial += 1
            member = f"{self._process}:{self._serial}"
            try:
                taken = await self._hold(keys=[PREFIX + key], args=[limit, member, self._lease_ms])
            except FAILURES as error:
                self._link.failed(error)
            else:
                if taken:
                    self._mine.setdefault(key, []).append(member)
                return bool(taken)
        if await self._local.hold(key, limit):
            self._mine.setdefault(key, []).append(None)
            return True
        return False

    async def release(self, key: str) -> None:
        places = self._mine.get(key)
        if not places:
            return
        member = places.pop()  # no longer renewed: its lease runs out if this is cut short
        if not places:
            del self._mine[key]
        if member is None:
            await self._local.release(key)
            return
        try:
            await self._link.client.zrem(PREFIX + key, member)
        except FAILURES as error:  # its lease runs out by itself
            self._link.failed(error)

    async def wait(self, key: str, per_minute: int) -> float:
        return await self._rate(key, per_minute, 0)

    async def take(self, key: str, per_minute: int) -> float:
        return await self._rate(key, per_minute, 1)

    def give_back(self, key: str, per_minute: int) -> None:
        task = asyncio.get_running_loop().create_task(self._rate(key, per_minute, -1))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _rate(self, key: str, per_minute: int, mode: int) -> float:
        if self._link.available:
            try:
                return float(await self._bucket(keys=[PREFIX + key], args=[per_minute, mode]))
            except FAILURES as error:
                self._link.failed(error)
        if mode == -1:
            self._local.give_back(key, per_minute)
            return 0.0
        local = self._local.take if mode == 1 else self._local.wait
        return await local(key, per_minute)

    async def _renew_leases(self) -> None:
        """Renew this process's places a few times per lease, so that they outlive it only
        by the lease when it dies."""
        while True:
            await asyncio.sleep(self._lease_ms / 1000 / 3)
            if not self._link.available:
                continue
            try:
                async with self._link.client.pipeline(transaction=False) as pipe:
                    for key, places in list(self._mine.items()):
                        members = [m for m in places if m is not None]
                        if members:
                            await self._renew(
                                keys=[PREFIX + key], args=[self._lease_ms, *members], client=pipe
                            )
                    await pipe.execute()
            except FAILURES as error:
                self._link.failed(error)
