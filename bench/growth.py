"""The growth workload: what a turn, a list, a page, a search and a resume cost as the store fills.

Every other workload starts on an empty database; people do not. This one
fills it through the public API as a small team would (`USERS` users with
`CONVERSATIONS` conversations each, one short turn after another,
`FILL_CONCURRENCY` at a time) and stops at each size to measure, one request
at a time, what a person waits for: `turn.started` and the whole turn over a
WebSocket, the conversation list, a page of messages, a search, and a resume
of a finished turn from storage. The database's CPU per turn is measured
while filling. A cost that grows with what is stored shows as a column that
grows down the table.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.measure import Measurement, measuring
from bench.stats import summarize_ms
from bench.target import Target, fresh_user

USERS = 50
CONVERSATIONS = 7  # each user's, filled round robin
FILL_CONCURRENCY = 4
SIZES = (0, 1_000, 5_000, 20_000)
PROBES = 30  # requests of each kind at each size
WORDS = ("soup", "bread", "garden", "bicycle", "river", "piano", "winter", "lantern")
TIMEOUT = aiohttp.ClientTimeout(total=60)
# What a bench service runs this with: the per-user limits would otherwise pace the fill,
# and a finished turn is not kept in memory, so a resume is read from the store.
SERVICE_ENV = {
    "MAX_TURNS_PER_USER": "0",
    "TURNS_PER_MINUTE": "0",
    "MAX_CONNECTIONS_PER_USER": "0",
    "TURN_RETENTION_SECONDS": "0",
}

Result = dict[str, Any]
# The bench's options that only this workload takes (`python -m bench --growth-...`).
GROWTH_OPTIONS = frozenset({"sizes", "conversation_turns"})


class GrowthError(Exception):
    """The service answered in a way the workload cannot measure."""


@dataclass
class Store:
    """What the workload has put in the service: users, their conversations, finished turns."""

    users: list[str]
    conversations: dict[tuple[str, int], str] = field(default_factory=dict)
    finished: list[tuple[str, str]] = field(default_factory=list)  # (user, turn_id)
    turns: int = 0
    # After this many turns a slot starts a new conversation (None: never).
    conversation_turns: int | None = None
    lengths: dict[tuple[str, int], int] = field(default_factory=dict)
    slots: itertools.cycle[tuple[str, int]] = field(init=False)

    def __post_init__(self) -> None:
        self.slots = itertools.cycle(
            [(user, index) for index in range(CONVERSATIONS) for user in self.users]
        )


async def growth(
    target: Target,
    *,
    sizes: tuple[int, ...] = SIZES,
    probes: int = PROBES,
    conversation_turns: int | None = None,
) -> Result:
    """`conversation_turns`: conversations end after that many turns, so that the store grows
    while no conversation grows past it (else each of the 350 lengthens as the store fills,
    and a turn's history with it)."""
    store = Store(
        [fresh_user("growth") for _ in range(USERS)], conversation_turns=conversation_turns
    )
    levels: list[Result] = []
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for size in sizes:
            wanted = max(0, size - store.turns)
            began = time.perf_counter()
            async with measuring(target) as cost:
                await _fill(session, target, store, wanted)
            fill_s = time.perf_counter() - began
            level: Result = {
                "stored_turns": store.turns,
                "filled": wanted,
                "fill_turns_per_s": round(wanted / fill_s, 1) if wanted else None,
                "database_cpu_ms_per_turn": _ms_per_turn(cost, "database", wanted),
                "service_cpu_ms_per_turn": _ms_per_turn(cost, "service", wanted),
                **await _probe(session, target, store, probes),
            }
            levels.append(level)
            print(f"  growth at {level['stored_turns']} turns: {_line(level)}", flush=True)
    return {
        "params": {
            "sizes": list(sizes),
            "users": USERS,
            "conversations_per_user": CONVERSATIONS,
            "conversation_turns": conversation_turns,
        },
        "levels": levels,
        "table": table(levels),
    }


def _ms_per_turn(cost: Measurement, process: str, turns: int) -> float | None:
    micros = cost.cpu_us_per(process, turns) if turns else None
    return None if micros is None else round(micros / 1000, 2)


async def _fill(session: aiohttp.ClientSession, target: Target, store: Store, count: int) -> None:
    """`count` short turns over SSE, `FILL_CONCURRENCY` at a time, round robin over slots."""
    queue = [next(store.slots) for _ in range(count)]

    async def worker(mine: list[tuple[str, int]]) -> None:
        for user, index in mine:
            await _sse_turn(session, target, store, user, index)

    await asyncio.gather(*(worker(queue[i::FILL_CONCURRENCY]) for i in range(FILL_CONCURRENCY)))


def _question() -> str:
    return f"What do you think about the {random.choice(WORDS)} number {random.randrange(10**6)}?"


async def _sse_turn(
    session: aiohttp.ClientSession, target: Target, store: Store, user: str, index: int
) -> None:
    turn_id = str(uuid.uuid4())
    body: dict[str, Any] = {"turn_id": turn_id, "content": _question()}
    if conversation := store.conversations.get((user, index)):
        body["conversation_id"] = conversation
    async with session.post(
        target.url("/api/turns"), json=body, headers=target.auth(user)
    ) as answer:
        if answer.status != 200:
            raise GrowthError(f"turn: {answer.status} {await answer.text()}")
        last = None
        async for line in answer.content:
            if line.startswith(b"data: "):
                event = orjson.loads(line[6:])
                last = event.get("type")
                if last == "turn.started":
                    store.conversations.setdefault((user, index), event["conversation_id"])
    if last != "turn.done":
        raise GrowthError(f"turn ended {last}")
    store.turns += 1
    store.finished.append((user, turn_id))
    length = store.lengths[(user, index)] = store.lengths.get((user, index), 0) + 1
    if store.conversation_turns is not None and length >= store.conversation_turns:
        store.conversations.pop((user, index), None)  # the next turn of this slot starts one
        store.lengths[(user, index)] = 0


async def _probe(
    session: aiohttp.ClientSession, target: Target, store: Store, probes: int
) -> Result:
    """Each kind of request `probes` times, one at a time, on the users' own data."""
    started: list[float] = []
    whole: list[float] = []
    for _ in range(probes):
        user, index = next(store.slots)
        began = time.perf_counter()
        at_started = await _ws_turn(session, target, store, user, index)
        whole.append(time.perf_counter() - began)
        started.append(at_started - began)
    lists, pages, searches, resumes = [], [], [], []
    for _ in range(probes):
        user = random.choice(store.users)
        headers = target.auth(user)
        lists.append(await _timed_get(session, target.url("/api/conversations"), headers))
        conversation = store.conversations.get((user, random.randrange(CONVERSATIONS)))
        if conversation is not None:
            url = target.url(f"/api/conversations/{conversation}/messages")
            pages.append(await _timed_get(session, url, headers))
        url = target.url(f"/api/search?q={random.choice(WORDS)}")
        searches.append(await _timed_get(session, url, headers))
        owner, turn_id = random.choice(store.finished)
        resumes.append(await _resume(session, target, owner, turn_id))
    return {
        "turn_started_ms": summarize_ms(started),
        "whole_turn_ms": summarize_ms(whole),
        "list_ms": summarize_ms(lists),
        "messages_page_ms": summarize_ms(pages),
        "search_ms": summarize_ms(searches),
        "resume_ms": summarize_ms(resumes),
    }


async def _ws_turn(
    session: aiohttp.ClientSession, target: Target, store: Store, user: str, index: int
) -> float:
    """One turn over a WebSocket; the moment `turn.started` arrived."""
    async with session.ws_connect(target.ws_url(), headers=target.auth(user)) as ws:
        if orjson.loads((await ws.receive(timeout=30)).data).get("type") != "ready":
            raise GrowthError("no ready frame")
        turn_id = str(uuid.uuid4())
        frame: dict[str, Any] = {"type": "turn.start", "turn_id": turn_id, "content": _question()}
        if conversation := store.conversations.get((user, index)):
            frame["conversation_id"] = conversation
        sent = time.perf_counter()
        await ws.send_str(orjson.dumps(frame).decode())
        started_at = sent
        while True:
            message = await ws.receive(timeout=60)
            event = orjson.loads(message.data)
            kind = event.get("type")
            if kind == "turn.started":
                started_at = time.perf_counter()
                store.conversations.setdefault((user, index), event["conversation_id"])
            elif kind in ("turn.done", "turn.error", "turn.cancelled", "error"):
                if kind != "turn.done":
                    raise GrowthError(f"probe turn: {event}")
                break
    store.turns += 1
    store.finished.append((user, turn_id))
    return started_at


async def _timed_get(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    began = time.perf_counter()
    async with session.get(url, headers=headers) as answer:
        if answer.status != 200:
            raise GrowthError(f"GET {url}: {answer.status} {await answer.text()}")
        await answer.read()
    return time.perf_counter() - began


async def _resume(session: aiohttp.ClientSession, target: Target, user: str, turn_id: str) -> float:
    """A finished turn resumed from its first event: a snapshot from storage, then its end."""
    headers = {**target.auth(user), "Last-Event-ID": "1"}
    return await _timed_get(session, target.url(f"/api/turns/{turn_id}/events"), headers)


COLUMNS = (
    "turns",
    "started p50/p99",
    "turn p50/p99",
    "list",
    "page",
    "search",
    "resume",
    "db ms/turn",
)


def _pair(summary: Result) -> str:
    return f"{summary.get('p50', '-')}/{summary.get('p99', '-')}" if summary.get("n") else "-"


def _row(level: Result) -> list[str]:
    return [
        str(level["stored_turns"]),
        _pair(level["turn_started_ms"]),
        _pair(level["whole_turn_ms"]),
        *(
            str(level[key].get("p50", "-"))
            for key in ("list_ms", "messages_page_ms", "search_ms", "resume_ms")
        ),
        str(level["database_cpu_ms_per_turn"] or "-"),
    ]


def _line(level: Result) -> str:
    return "  ".join(
        f"{name} {cell}" for name, cell in zip(COLUMNS[1:], _row(level)[1:], strict=True)
    )


def table(levels: list[Result]) -> str:
    """The growth table as bench/README.md shows it (ms; p50 unless a pair)."""
    rows = [list(COLUMNS), *(_row(level) for level in levels)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
