"""Per-user limits, across both transports: connections, running turns, starts, tokens a day.

One user must not be able to take the service (or the API key's budget) from
the others. The transports ask for a connection lease when a WebSocket is
authenticated or an SSE stream opens; the turn engine asks for a turn slot
before it stores anything. Each refusal is a domain error with `retry_after`,
so it is a 429 with `Retry-After` over HTTP and an `error` frame over WS.

Connections, running turns and the start rate are counted **in this process**:
behind several processes a user gets these limits per process (a shared
counter is a later issue). The daily output-token budget is read from the
stored answers' usage, so it holds across processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from server.config import Settings
from server.errors import (
    BudgetExhausted,
    DomainError,
    Flooding,
    TooManyConnections,
    TooManyTurns,
)
from server.identity import Identity

# Output tokens of the user's answers begun since the given moment.
UsageReader = Callable[[Identity, datetime], Awaitable[int]]
UserKey = tuple[str, str]

# Suggested waits where nothing says when room will be made (a turn ends, a socket closes).
TURN_RETRY_SECONDS = 2.0
CONNECTION_RETRY_SECONDS = 5.0
# Beyond this many users' buckets, full ones (idle users) are forgotten.
PRUNE_BUCKETS_ABOVE = 10_000


class TurnSlot:
    """A running turn's place in its user's count; released when the turn's task ends."""

    def __init__(self, limits: Limits, key: UserKey) -> None:
        self._limits, self._key = limits, key
        self._held = True

    def release(self, *_: Any) -> None:  # also a task's done callback
        if self._held:
            self._held = False
            self._limits._turn_ended(self._key)

    def refund(self) -> None:
        """The turn did not start after all (storage refused it): give the start back too."""
        if self._held:
            self.release()
            bucket = self._limits._buckets.get(self._key)
            if bucket is not None:
                bucket.give_back()


class Limits:
    def __init__(self, settings: Settings, usage: UsageReader | None) -> None:
        self._max_connections = settings.max_connections_per_user
        self._max_turns = settings.max_turns_per_user
        self._per_minute = settings.turns_per_minute
        self._tokens_per_day = settings.output_tokens_per_day
        self._usage = usage
        self._connections: dict[UserKey, int] = {}
        self._running: dict[UserKey, int] = {}
        self._buckets: dict[UserKey, TokenBucket] = {}
        self._exhausted_until: dict[UserKey, datetime] = {}
        self._gates: dict[UserKey, _Gate] = {}

    @contextmanager
    def connection(self, identity: Identity) -> Iterator[None]:
        """Hold one of the user's connections (a WebSocket, an SSE stream) while open."""
        key = _key(identity)
        count = self._connections.get(key, 0)
        if self._max_connections and count >= self._max_connections:
            raise TooManyConnections(
                f"At most {self._max_connections} connections per user; close one first",
                retry_after=CONNECTION_RETRY_SECONDS,
            )
        self._connections[key] = count + 1
        try:
            yield
        finally:
            left = self._connections[key] - 1
            if left:
                self._connections[key] = left
            else:
                del self._connections[key]

    def refusal(self, identity: Identity) -> DomainError | None:
        """What `admit_turn` would refuse a start with now, told from memory alone."""
        key = _key(identity)
        if self._max_turns and self._running.get(key, 0) >= self._max_turns:
            return self._too_many_turns()
        exhausted_until = self._exhausted_until.get(key)
        if exhausted_until is not None:
            if exhausted_until > datetime.now(UTC):
                return self._budget_spent(exhausted_until)
            del self._exhausted_until[key]
        wait = self._bucket(key).wait() if self._per_minute else 0.0
        return self._flooding(wait) if wait else None

    @asynccontextmanager
    async def one_at_a_time(self, identity: Identity) -> AsyncIterator[None]:
        """Queue a user's work behind its own, not everyone's.

        A user at its limits still has each start looked up (it may be a
        replay, which no limit counts), but one lookup at a time, however many
        sockets it floods from: the database's queue then holds at most one of
        its reads ahead of another user's turn start."""
        key = _key(identity)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate()
        gate.users += 1
        try:
            async with gate.lock:
                yield
        finally:
            gate.users -= 1
            if not gate.users:
                del self._gates[key]

    async def admit_turn(self, identity: Identity) -> TurnSlot:
        """A slot for a new turn, or the limit it would break."""
        key = _key(identity)
        if self._max_turns and self._running.get(key, 0) >= self._max_turns:
            raise self._too_many_turns()
        budget = await self.budget(identity)
        if budget is not None and budget["output_tokens_remaining"] <= 0:
            # Spent stays spent until the day ends: later starts are refused from memory.
            resets = datetime.fromisoformat(budget["resets_at"])
            self._exhausted_until[key] = resets
            raise self._budget_spent(resets)
        # Counted after the awaits above, so that two starts at once cannot both pass.
        if self._max_turns and self._running.get(key, 0) >= self._max_turns:
            raise self._too_many_turns()
        if self._per_minute:
            wait = self._bucket(key).take()
            if wait:
                raise self._flooding(wait)
        self._running[key] = self._running.get(key, 0) + 1
        return TurnSlot(self, key)

    def _too_many_turns(self) -> TooManyTurns:
        return TooManyTurns(
            f"At most {self._max_turns} turns may run at once per user",
            retry_after=TURN_RETRY_SECONDS,
        )

    def _budget_spent(self, resets: datetime) -> BudgetExhausted:
        return BudgetExhausted(
            f"The daily budget of {self._tokens_per_day} output tokens is spent",
            retry_after=max(1.0, (resets - datetime.now(UTC)).total_seconds()),
        )

    def _flooding(self, wait: float) -> Flooding:
        return Flooding(f"At most {self._per_minute} turns a minute per user", retry_after=wait)

    async def budget(self, identity: Identity) -> dict[str, Any] | None:
        """Today's (UTC) output-token budget and what is left of it; None when unlimited."""
        if not self._tokens_per_day or self._usage is None:
            return None
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        used = await self._usage(identity, today)
        return {
            "output_tokens_per_day": self._tokens_per_day,
            "output_tokens_used": used,
            "output_tokens_remaining": max(0, self._tokens_per_day - used),
            "resets_at": (today + timedelta(days=1)).isoformat(),
        }

    def _bucket(self, key: UserKey) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > PRUNE_BUCKETS_ABOVE:
                self._buckets = {k: b for k, b in self._buckets.items() if not b.full}
            bucket = self._buckets[key] = TokenBucket(self._per_minute / 60.0, self._per_minute)
        return bucket

    def _turn_ended(self, key: UserKey) -> None:
        left = self._running.get(key, 0) - 1
        if left > 0:
            self._running[key] = left
        else:
            self._running.pop(key, None)


class _Gate:
    """One user's lock, with the count of those holding or awaiting it (to drop it after)."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


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


def _key(identity: Identity) -> UserKey:
    return (identity.tenant_id, identity.user_id)
