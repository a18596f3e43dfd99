"""Turn scenarios: latency over WS and SSE, concurrency, throughput and cancel.

Each takes a `Target` and counts, and returns a JSON-ready dict: the
parameters, what happened to every turn (so a fast but broken run cannot pass
for a good one), and the timings.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp

from bench.client import BenchError, BenchSocket, TurnTiming, sse_turn
from bench.stats import summarize, summarize_ms
from bench.target import Target, fresh_user
from tests.fake_anthropic import Reply

Result = dict[str, Any]
RunTurn = Callable[[str, str | None], Awaitable[TurnTiming]]
UPSTREAM_CLOSE_WAIT = 5.0
PING_SAMPLES = 20
PING_INTERVAL = 0.01
PING_LIMIT = 3000


def reply_chunks(count: int) -> list[str]:
    """`count` distinct word-sized chunks, so a lost or reordered delta shows in the text."""
    return [f"w{index} " for index in range(count)]


def turn_report(timings: Sequence[TurnTiming], expected_text: str | None = None) -> Result:
    """What happened to the turns, and how long their first events and endings took."""
    intact = sum(1 for t in timings if expected_text is None or t.text == expected_text)
    return {
        "turns": len(timings),
        "completed": sum(1 for t in timings if t.completed),
        "text_intact": intact,
        "outcomes": dict(Counter(t.error_code or t.outcome for t in timings)),
        "started_ms": summarize_ms([t.started_s for t in timings]),
        "first_delta_ms": summarize_ms([t.first_delta_s for t in timings]),
        "done_ms": summarize_ms([t.end_s for t in timings if t.outcome == "turn.done"]),
    }


async def ws_latency(target: Target, *, turns: int = 30, chunks: int = 50) -> Result:
    """Sequential turns on one socket: the latency a single user feels, without contention."""
    async with aiohttp.ClientSession() as session:
        socket = await BenchSocket.open(session, target, fresh_user("ws_latency"))
        try:
            return await _sequential_turns(target, socket.turn, turns=turns, chunks=chunks)
        finally:
            await socket.close()


async def sse_latency(target: Target, *, turns: int = 30, chunks: int = 50) -> Result:
    """The same turns over `POST /api/turns`: one HTTP request and response stream each."""
    headers = target.auth(fresh_user("sse_latency"))
    async with aiohttp.ClientSession() as session:

        async def run_turn(content: str, conversation_id: str | None) -> TurnTiming:
            return await sse_turn(session, target, headers, content, conversation_id)

        return await _sequential_turns(target, run_turn, turns=turns, chunks=chunks)


async def _sequential_turns(
    target: Target, run_turn: RunTurn, *, turns: int, chunks: int
) -> Result:
    """One conversation: an unmeasured first turn creates it (and its title), then `turns`."""
    target.fake.clear()
    warm_up = await run_turn("warm up", None)
    if warm_up.conversation_id is None:
        raise BenchError(f"the warm-up turn did not start: {warm_up}")
    chunk_list = reply_chunks(chunks)
    timings = []
    for index in range(turns):
        target.fake.script(Reply.text(chunk_list))
        timings.append(await run_turn(f"question {index}", warm_up.conversation_id))
    return {
        "params": {"turns": turns, "chunks": chunks},
        **turn_report(timings, "".join(chunk_list)),
    }


async def ws_concurrency(
    target: Target, *, connections: int = 20, turns: int = 5, chunks: int = 50
) -> Result:
    """`connections` users at once, each running `turns` turns back to back in its own
    conversation: throughput, latency under contention, and the memory it costs."""
    target.fake.clear()
    chunk_list = reply_chunks(chunks)
    target.fake.script(*[Reply.text(chunk_list)] * (connections * turns))
    rss_before = target.rss_kib()
    async with aiohttp.ClientSession() as session:
        sockets = await asyncio.gather(
            *(
                BenchSocket.open(session, target, fresh_user("ws_concurrency"))
                for _ in range(connections)
            )
        )
        try:
            began = time.perf_counter()
            per_socket = await asyncio.gather(*(_turns_in_a_row(s, turns) for s in sockets))
            elapsed = time.perf_counter() - began
        finally:
            await asyncio.gather(*(s.close() for s in sockets))
    rss_after = target.rss_kib()
    timings = [timing for row in per_socket for timing in row]
    report = turn_report(timings, "".join(chunk_list))
    return {
        "params": {"connections": connections, "turns": turns, "chunks": chunks},
        **report,
        "wall_s": round(elapsed, 3),
        "turns_per_s": round(report["completed"] / elapsed, 2),
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_growth_kib": None
        if rss_before is None or rss_after is None
        else rss_after - rss_before,
    }


async def _turns_in_a_row(socket: BenchSocket, turns: int) -> list[TurnTiming]:
    timings: list[TurnTiming] = []
    conversation_id: str | None = None
    for index in range(turns):
        timing = await socket.turn(f"question {index}", conversation_id)
        conversation_id = conversation_id or timing.conversation_id
        timings.append(timing)
    return timings


async def ws_throughput(target: Target, *, chunks: int = 5000, repeats: int = 3) -> Result:
    """Long answers with no pause between tokens: how fast the service relays text, how
    far it merges deltas for a client that reads slower than upstream writes, and what
    another user's socket feels meanwhile (ping round trips, idle and during the stream)."""
    chunk_list = reply_chunks(chunks)
    timings: list[TurnTiming] = []
    async with aiohttp.ClientSession() as session:
        socket = await BenchSocket.open(session, target, fresh_user("ws_throughput"))
        bystander = await BenchSocket.open(session, target, fresh_user("ws_bystander"))
        try:
            idle_pings = [await _ping(bystander) for _ in range(PING_SAMPLES)]
            busy_pings: list[float] = []
            for index in range(repeats):
                target.fake.clear()
                target.fake.script(Reply.text(chunk_list))
                streaming = asyncio.Event()
                pinger = asyncio.create_task(_ping_until(bystander, streaming))
                try:
                    timings.append(await socket.turn(f"a long answer please ({index})"))
                finally:
                    streaming.set()
                    busy_pings.extend(await pinger)
        finally:
            await asyncio.gather(socket.close(), bystander.close())
    windows = [
        t.last_delta_s - t.started_s
        for t in timings
        if t.started_s is not None and t.last_delta_s is not None
    ]
    return {
        "params": {"chunks": chunks, "repeats": repeats},
        **turn_report(timings, "".join(chunk_list)),
        # upstream chunks per second of streaming, from turn.started to the last delta
        "chunks_per_s": summarize([chunks / max(window, 1e-9) for window in windows]),
        "delta_frames": summarize([t.delta_frames for t in timings]),
        "chunks_per_frame": summarize([chunks / t.delta_frames for t in timings if t.delta_frames]),
        "bystander_ping_idle_ms": summarize_ms(idle_pings),
        "bystander_ping_streaming_ms": summarize_ms(busy_pings),
    }


async def _ping(socket: BenchSocket) -> float:
    """One `ping` → `pong` round trip: how long the service's loop takes to answer."""
    began = time.perf_counter()
    await socket.send({"type": "ping"})
    frame = await socket.recv()
    if frame.get("type") != "pong":
        raise BenchError(f"expected pong, got {frame}")
    return time.perf_counter() - began


async def _ping_until(socket: BenchSocket, stop: asyncio.Event) -> list[float]:
    """Ping every PING_INTERVAL until `stop` is set (at most PING_LIMIT times)."""
    round_trips: list[float] = []
    for _ in range(PING_LIMIT):
        if stop.is_set():
            break
        round_trips.append(await _ping(socket))
        await asyncio.sleep(PING_INTERVAL)
    return round_trips


async def ws_cancel(target: Target, *, turns: int = 20) -> Result:
    """Cancel endless answers after their first delta: how soon the client hears
    `turn.cancelled`, and how soon the upstream request is closed (tokens stop)."""
    timings: list[TurnTiming] = []
    to_cancelled: list[float] = []
    to_upstream_closed: list[float] = []
    upstream_left_open = 0
    async with aiohttp.ClientSession() as session:
        socket = await BenchSocket.open(session, target, fresh_user("ws_cancel"))
        try:
            conversation_id: str | None = None
            for index in range(turns):
                target.fake.clear()  # so the one request recorded below is this turn's
                target.fake.script(Reply.endless())
                clock = await socket.start(f"cancel me {index}", conversation_id)
                timing = await socket.follow(clock, until_first_delta=True)
                conversation_id = conversation_id or timing.conversation_id
                if timing.end_s is not None or timing.first_delta_s is None:
                    timings.append(timing)  # ended (or stalled) before it could be cancelled
                    continue
                cancel_at, cancel_monotonic = clock.elapsed(), time.monotonic()
                await socket.send({"type": "turn.cancel", "turn_id": clock.turn_id})
                timing = await socket.follow(clock)
                timings.append(timing)
                if timing.end_s is not None:
                    to_cancelled.append(timing.end_s - cancel_at)
                closed_at = await _upstream_closed_at(target)
                if closed_at is None:
                    upstream_left_open += 1
                else:
                    to_upstream_closed.append(closed_at - cancel_monotonic)
        finally:
            await socket.close()
    return {
        "params": {"turns": turns},
        "turns": len(timings),
        "cancelled": sum(1 for t in timings if t.outcome == "turn.cancelled"),
        "partial_saved": sum(
            1
            for t in timings
            if t.final_status == "cancelled" and t.final_text == t.text and t.text
        ),
        "outcomes": dict(Counter(t.error_code or t.outcome for t in timings)),
        "cancel_to_cancelled_ms": summarize_ms(to_cancelled),
        "cancel_to_upstream_closed_ms": summarize_ms(to_upstream_closed),
        "upstream_left_open": upstream_left_open,
    }


async def _upstream_closed_at(target: Target) -> float | None:
    """When the fake noticed the service close this turn's request (time.monotonic)."""
    requests = list(target.fake.requests)
    if len(requests) != 1:
        return None
    record = requests[0]
    await record.wait_finished(UPSTREAM_CLOSE_WAIT)
    return record.closed_at if record.closed_by_client.is_set() else None
