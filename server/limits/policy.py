"""Limits per user and per tenant, across both transports: connections, running turns,
starts a minute, output tokens a day.

One user (or one tenant) must not be able to take the service, or the API
key's budget, from the others. The transports hold a connection place while
a WebSocket or an SSE stream is open; the turn engine asks for a turn slot
before it stores anything. Each refusal is a domain error with `retry_after`,
so it is a 429 with `Retry-After` over HTTP and an `error` frame over WS.

Every limit is checked for the user and then for the user's tenant, each
where the operator set one. The counts live in a `LocalCounters` (this
process: behind several processes each counts its own) or a shared store.
The daily output-token budgets are read from the stored answers' usage, so
they hold across processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
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
from server.limits.counters import Counters, LocalCounters, TokenBucket
from server.prices import Spent

Document = dict[str, Any]

# Output tokens and cost of the answers matching a filter (a user's, a tenant's) begun
# since a moment.
UsageReader = Callable[[Document, datetime], Awaitable[Spent]]

# Suggested waits where nothing says when room will be made (a turn ends, a socket closes).
TURN_RETRY_SECONDS = 2.0
CONNECTION_RETRY_SECONDS = 5.0
# A user at its limits: how many of its refused starts a second are still looked up
# in case they are replays (per process), and how many idle users' buckets are kept.
LOOKUPS_PER_SECOND, LOOKUP_BURST = 2.0, 5
PRUNE_LOOKUPS_ABOVE = 10_000


@dataclass(frozen=True, slots=True)
class Scope:
    """Who a limit counts (a user, or a whole tenant) and how much it allows; 0 is no limit."""

    who: str  # "user" or "tenant", for the messages
    key: str  # the counters' key
    usage_filter: Document  # the answers that count against its daily budget
    connections: int
    turns: int
    per_minute: int
    tokens_per_day: int
    cost_per_day: float = 0.0  # USD; the user's only (COST_PER_USER_PER_DAY_USD)


class TurnSlot:
    """A running turn's places in its scopes' counts, given back when the turn ends.

    The engine gives them back before it tells the followers the turn ended, so a
    client that starts its next turn on the terminal event finds its place free
    (with a shared store the release is a round trip); a done callback on the
    turn's task is the safety net."""

    def __init__(self, limits: Limits, scopes: list[Scope]) -> None:
        self._limits, self._scopes = limits, scopes
        self._held = True
        self._releasing: asyncio.Task[None] | None = None

    async def release(self) -> None:
        if self._held:
            self._held = False
            for scope in self._scopes:
                if scope.turns:
                    await self._limits.counters.release(f"{scope.key}:turns")

    def release_soon(self, *_: Any) -> None:  # a task's done callback
        if self._held:
            self._releasing = asyncio.get_running_loop().create_task(self.release())

    async def refund(self) -> None:
        """The turn did not start after all (storage refused it): give the starts back too."""
        if self._held:
            await self.release()
            for scope in self._scopes:
                if scope.per_minute:
                    self._limits.counters.give_back(f"{scope.key}:starts", scope.per_minute)


class Limits:
    def __init__(
        self,
        settings: Settings,
        usage: UsageReader | None,
        counters: Counters | None = None,
    ) -> None:
        self._settings = settings
        self._usage = usage
        self.counters: Counters = counters if counters is not None else LocalCounters()
        # A spent scope: until when, and whether its tokens (not its cost) ran out.
        self._exhausted_until: dict[str, tuple[datetime, bool]] = {}
        self._gates: dict[str, _Gate] = {}
        self._lookups: dict[str, TokenBucket] = {}

    def scopes(self, identity: Identity) -> list[Scope]:
        s = self._settings
        return [
            Scope(
                "user",
                f"u:{identity.tenant_id}:{identity.user_id}",
                identity.scope,
                s.max_connections_per_user,
                s.max_turns_per_user,
                s.turns_per_minute,
                s.output_tokens_per_day,
                s.cost_per_user_per_day_usd,
            ),
            Scope(
                "tenant",
                f"t:{identity.tenant_id}",
                {"tenant_id": identity.tenant_id},
                s.max_connections_per_tenant,
                s.max_turns_per_tenant,
                s.tenant_turns_per_minute,
                s.output_tokens_per_tenant_per_day,
            ),
        ]

    @asynccontextmanager
    async def connection(self, identity: Identity) -> AsyncIterator[None]:
        """Hold a connection place (a WebSocket, an SSE stream) of the user and its tenant."""
        held: list[str] = []
        try:
            for scope in self.scopes(identity):
                if not scope.connections:
                    continue
                key = f"{scope.key}:connections"
                if not await self.counters.hold(key, scope.connections):
                    raise TooManyConnections(
                        f"At most {scope.connections} connections per {scope.who}; close one first",
                        retry_after=CONNECTION_RETRY_SECONDS,
                    )
                held.append(key)
            yield
        finally:
            for key in held:
                await self.counters.release(key)

    async def refusal(self, identity: Identity) -> DomainError | None:
        """What `admit_turn` would refuse a start with now, told without reading the database."""
        for scope in self.scopes(identity):
            if scope.turns and await self.counters.held(f"{scope.key}:turns") >= scope.turns:
                return _too_many_turns(scope)
            exhausted = self._exhausted_until.get(scope.key)
            if exhausted is not None:
                if exhausted[0] > datetime.now(UTC):
                    return _budget_spent(scope, exhausted[0], tokens=exhausted[1])
                del self._exhausted_until[scope.key]
            if scope.per_minute:
                wait = await self.counters.wait(f"{scope.key}:starts", scope.per_minute)
                if wait:
                    return _flooding(scope, wait)
        return None

    def may_look_up(self, identity: Identity) -> bool:
        """Whether a start refused by the limits may still be looked up (it may be a replay).

        Each lookup is a database read, and a flood of refused starts is a flood
        of reads that slows every user's turn starts: a user at its limits gets
        a few a second; beyond them its starts are refused unread, and a replay
        among them is served when the client retries after `retry_after`."""
        key = self.scopes(identity)[0].key
        bucket = self._lookups.get(key)
        if bucket is None:
            if len(self._lookups) > PRUNE_LOOKUPS_ABOVE:
                self._lookups = {k: b for k, b in self._lookups.items() if not b.full}
            bucket = self._lookups[key] = TokenBucket(LOOKUPS_PER_SECOND, LOOKUP_BURST)
        return not bucket.take()

    @asynccontextmanager
    async def one_at_a_time(self, identity: Identity) -> AsyncIterator[None]:
        """Queue a user's work behind its own, not everyone's.

        A user at its limits still has each start looked up (it may be a
        replay, which no limit counts), but one lookup at a time, however many
        sockets it floods from: the database's queue then holds at most one of
        its reads ahead of another user's turn start."""
        key = self.scopes(identity)[0].key
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
        """A slot for a new turn in the user's and the tenant's counts, or the limit it breaks."""
        scopes = self.scopes(identity)
        for scope in scopes:
            if scope.turns and await self.counters.held(f"{scope.key}:turns") >= scope.turns:
                raise _too_many_turns(scope)
            budget, cost = await self._budgets(scope)
            spent = budget is not None and budget["output_tokens_remaining"] <= 0
            if spent or (cost is not None and cost["cost_usd_remaining"] <= 0):
                # Spent stays spent until the day ends: later starts are refused from memory.
                resets = datetime.fromisoformat((budget or cost or {})["resets_at"])
                self._exhausted_until[scope.key] = (resets, spent)
                raise _budget_spent(scope, resets, tokens=spent)
        # Places and starts are taken after the awaits above, all or none.
        taken: list[Scope] = []
        try:
            for scope in scopes:
                if scope.turns and not await self.counters.hold(f"{scope.key}:turns", scope.turns):
                    raise _too_many_turns(scope)
                if scope.per_minute:
                    wait = await self.counters.take(f"{scope.key}:starts", scope.per_minute)
                    if wait:
                        if scope.turns:
                            await self.counters.release(f"{scope.key}:turns")
                        raise _flooding(scope, wait)
                taken.append(scope)
        except BaseException:
            await TurnSlot(self, taken).refund()
            raise
        return TurnSlot(self, taken)

    async def admit_sync(self, identity: Identity) -> None:
        """Count a catch-up read (`/api/sync`, the running turns) against the user's rate.

        Each is a few indexed reads; the rate (SYNC_PER_MINUTE, a token bucket with that
        burst, shared through Redis like the turn starts) only stops a client stuck in a
        loop from spending the database on it."""
        per_minute = self._settings.sync_per_minute
        if not per_minute:
            return
        key = self.scopes(identity)[0].key
        wait = await self.counters.take(f"{key}:syncs", per_minute)
        if wait:
            raise Flooding(f"At most {per_minute} syncs a minute per user", retry_after=wait)

    async def budgets(
        self, identity: Identity
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The user's output-token and cost budgets today (UTC) and what is left of each;
        None for one the operator did not set."""
        return await self._budgets(self.scopes(identity)[0])

    async def _budgets(self, scope: Scope) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if not (scope.tokens_per_day or scope.cost_per_day) or self._usage is None:
            return None, None
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        used = await self._usage(scope.usage_filter, today)
        resets_at = (today + timedelta(days=1)).isoformat()
        tokens = cost = None
        if scope.tokens_per_day:
            tokens = {
                "output_tokens_per_day": scope.tokens_per_day,
                "output_tokens_used": used.output_tokens,
                "output_tokens_remaining": max(0, scope.tokens_per_day - used.output_tokens),
                "resets_at": resets_at,
            }
        if scope.cost_per_day:
            cost = {
                "cost_usd_per_day": scope.cost_per_day,
                "cost_usd_used": round(used.cost_usd, 8),
                "cost_usd_remaining": round(max(0.0, scope.cost_per_day - used.cost_usd), 8),
                "resets_at": resets_at,
            }
        return tokens, cost


class _Gate:
    """One user's lock, with the count of those holding or awaiting it (to drop it after)."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def _too_many_turns(scope: Scope) -> TooManyTurns:
    return TooManyTurns(
        f"At most {scope.turns} turns may run at once per {scope.who}",
        retry_after=TURN_RETRY_SECONDS,
    )


def _budget_spent(scope: Scope, resets: datetime, *, tokens: bool) -> BudgetExhausted:
    whose = "The" if scope.who == "user" else f"Your {scope.who}'s"
    amount = (
        f"{scope.tokens_per_day} output tokens" if tokens else f"${scope.cost_per_day:g} of usage"
    )
    return BudgetExhausted(
        f"{whose} daily budget of {amount} is spent",
        retry_after=max(1.0, (resets - datetime.now(UTC)).total_seconds()),
    )


def _flooding(scope: Scope, wait: float) -> Flooding:
    return Flooding(f"At most {scope.per_minute} turns a minute per {scope.who}", retry_after=wait)
