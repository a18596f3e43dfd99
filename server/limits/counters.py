"""Where the limits keep their counts: places held (connections, running turns) and rates.

`LocalCounters` keeps them in this process's memory: behind several processes
each process counts its own. Its methods are coroutines, so that a shared
store (Redis) can stand in for it without the callers changing.
"""

from __future__ import annotations

import time
from typing import Protocol

# Beyond this many rate buckets, full ones (idle callers) are forgotten.
PRUNE_BUCKETS_ABOVE = 10_000


class Counters(Protocol):
    """Places held under a key (at most a limit) and start rates: in memory or shared."""

    async def held(self, key: str) -> int: ...
    async def hold(self, key: str, limit: int) -> bool: ...
    async def release(self, key: str) -> None: ...
    async def wait(self, key: str, per_minute: int) -> float: ...
    async def take(self, key: str, per_minute: int) -> float: ...
    def give_back(self, key: str, per_minute: int) -> None: ...


class LocalCounters:
    def __init__(self) -> None:
        self._held: dict[str, int] = {}
        self._buckets: dict[str, TokenBucket] = {}

    async def held(self, key: str) -> int:
        return self._held.get(key, 0)

    async def hold(self, key: str, limit: int) -> bool:
        """Take one of `limit` places under `key`; False when all are taken."""
        count = self._held.get(key, 0)
        if count >= limit:
            return False
        self._held[key] = count + 1
        return True

    async def release(self, key: str) -> None:
        """Give a place back."""
        left = self._held.get(key, 0) - 1
        if left > 0:
            self._held[key] = left
        else:
            self._held.pop(key, None)

    async def wait(self, key: str, per_minute: int) -> float:
        """Seconds until `key` may start something at `per_minute`; 0 now (nothing taken)."""
        return self._bucket(key, per_minute).wait()

    async def take(self, key: str, per_minute: int) -> float:
        """0 when a start was counted, else the seconds until one may be."""
        return self._bucket(key, per_minute).take()

    def give_back(self, key: str, per_minute: int) -> None:
        self._bucket(key, per_minute).give_back()

    def _bucket(self, key: str, per_minute: int) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > PRUNE_BUCKETS_ABOVE:
                self._buckets = {k: b for k, b in self._buckets.items() if not b.full}
            bucket = self._buckets[key] = TokenBucket(per_minute / 60.0, per_minute)
        return bucket


class TokenBucket:
    """`burst` starts at once, refilled at `rate` a second."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate, self._burst = rate, float(burst)
        self._tokens, self._stamp = float(burst), time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one will be there."""
        wait = self.wait()
        if not wait:
            self._tokens -= 1
        return wait

    def wait(self) -> float:
        """0 when a token is there (none is taken), else the seconds until one will be."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate

    def give_back(self) -> None:
        self._tokens = min(self._burst, self._tokens + 1)

    @property
    def full(self) -> bool:
        self._refill()
        return self._tokens >= self._burst

    def _refill(self) -> None:
        moment = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (moment - self._stamp) * self._rate)
        self._stamp = moment
