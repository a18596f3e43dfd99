"""The workloads: concurrent streams against the baseline, cancel, burst, and DB writes.

Each takes a `Target` and sizes and returns a JSON-ready dict. Stream
workloads run the same streams twice with the same clients: first read
straight from the fake upstream (the baseline: the physical limit of this
machine, fake and client included), then through the service.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Literal

import aiohttp

from bench.clients import StreamResult
from bench.measure import Measurement, measuring
from bench.phase import run_phase, stream_figures, stream_specs
from bench.stats import difference, summarize, summarize_us
from bench.target import Target

Result = dict[str, Any]
Hook = Callable[[], Awaitable[None]]
CANCEL_AFTER_SECONDS = (0.5, 1.5)  # a cancel comes this long after the stream's first token


async def streams(
    target: Target,
    *,
    transport: Literal["ws", "sse"],
    streams: int,
    tokens: int = 200,
    rate: float = 50.0,
    before_relay: Hook | None = None,
) -> Result:
    """`streams` answers of `tokens` at `rate` tokens/s, all live at once: direct, then relayed."""
    _, direct_specs = stream_specs(streams, tokens=tokens, rate=rate)
    async with measuring(target) as direct_cost:
        direct = stream_figures(await run_phase(target, "direct", direct_specs), tokens)
    if before_relay is not None:
        await before_relay()
    _, relay_specs = stream_specs(streams, tokens=tokens, rate=rate)
    async with measuring(target) as relay_cost:
        relay = stream_figures(await run_phase(target, transport, relay_specs), tokens)
    return {
        "params": {"transport": transport, "streams": streams, "tokens": tokens, "rate": rate},
        "offered_tokens_per_s": streams * rate if rate > 0 else None,
        "added_latency_ms": difference(relay["latency_ms"], direct["latency_ms"]),
        "added_ttft_ms": difference(relay["ttft_ms"], direct["ttft_ms"]),
        **_costs(relay_cost, relay["tokens"], streams, relay["token_window_us"]),
        "relay": {**relay, "cost": relay_cost.to_json()},
        "direct": {**direct, "cost": direct_cost.to_json()},
    }


def _costs(
    cost: Measurement, tokens: int, turns: int, window: tuple[int, int] | None = None
) -> Result:
    """CPU per token while tokens flowed (`window`: first to last token's arrival) and over
    the whole phase (turn starts and endings, i.e. per-turn costs, included)."""
    return {
        "service_cpu_us_per_token": cost.cpu_us_per("service", tokens, window),
        "database_cpu_us_per_token": cost.cpu_us_per("database", tokens, window),
        "service_cpu_us_per_token_with_turn_costs": cost.cpu_us_per("service", tokens),
        "database_cpu_us_per_token_with_turn_costs": cost.cpu_us_per("database", tokens),
        "db_writes_per_turn": None if cost.writes is None else round(cost.writes / turns, 2),
        "redis_cpu_us_per_token": cost.cpu_us_per("redis", tokens, window),
        "redis_commands_per_token": None
        if cost.redis_commands is None or tokens <= 0
        else round(cost.redis_commands["commands"] / tokens, 4),
        "redis_round_trips_per_token": None  # script calls: the batched writes, limit checks
        if cost.redis_commands is None or tokens <= 0
        else round(cost.redis_commands["scripts"] / tokens, 4),
        "generator_cpu_share": cost.cpu_share("generator"),
        "upstream_cpu_share": cost.cpu_share("upstream"),
        "service_peak_rss_kib": cost.sampler.peak_rss_kib.get("service"),
        "database_peak_rss_kib": cost.sampler.peak_rss_kib.get("database"),
    }


async def cancel_under_load(
    target: Target, *, load: int = 200, cancels: int = 50, tokens: int = 200, rate: float = 50.0
) -> Result:
    """`load` paced WS streams, plus `cancels` endless ones cancelled mid-answer.

    Cancel → `turn.cancelled` is the client's clock; cancel → upstream closed
    compares the client's send time with the moment the fake's connection saw
    the close (the same monotonic clock, two processes). Tokens the fake wrote
    after the cancel left the client are counted from its stamps.
    """
    run, specs = stream_specs(load + cancels, tokens=tokens, rate=rate)
    specs[load:] = [replace(spec, endless=True) for spec in specs[load:]]
    chooser = random.Random(7)
    cancel_after = {spec.key: chooser.uniform(*CANCEL_AFTER_SECONDS) for spec in specs[load:]}
    async with measuring(target) as cost:
        results = await run_phase(target, "ws", specs, cancel_after=cancel_after)
    seen = await upstream_run(target, run)
    cancelled = [r for r in results if r.key in cancel_after]
    to_cancelled, to_closed, written_after, left_open = [], [], [], 0
    for result in cancelled:
        record = seen["streams"].get(result.key, {})
        if result.cancel_sent_us is None:
            continue
        if result.ended_us is not None and result.outcome == "cancelled":
            to_cancelled.append(result.ended_us - result.cancel_sent_us)
        if record.get("closed_us") is None:
            left_open += 1
        else:
            to_closed.append(record["closed_us"] - result.cancel_sent_us)
        written_after.append(
            sum(1 for s in record.get("stamps_us", []) if s > result.cancel_sent_us)
        )
    load_figures = stream_figures(results[:load], tokens)
    return {
        "params": {"load": load, "cancels": cancels, "tokens": tokens, "rate": rate},
        "cancelled": sum(1 for r in cancelled if r.outcome == "cancelled"),
        "outcomes": load_figures["outcomes"] | _outcomes(cancelled),
        "cancel_to_cancelled_ms": summarize_us(to_cancelled),
        "cancel_to_upstream_closed_ms": summarize_us(to_closed),
        "upstream_left_open": left_open,
        "upstream_tokens_after_cancel": summarize(written_after),
        "relayed_tokens_stamped_after_cancel": sum(r.tokens_after_cancel_sent for r in cancelled),
        "deltas_after_turn_cancelled": sum(r.deltas_after_end for r in cancelled),
        "load_latency_ms": load_figures["latency_ms"],
        **_costs(cost, sum(r.tokens for r in results), load + cancels),
        "cost": cost.to_json(),
    }


def _outcomes(results: list[StreamResult]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in results:
        counts[f"cancel:{result.outcome}"] = counts.get(f"cancel:{result.outcome}", 0) + 1
    return counts


async def upstream_run(target: Target, run: str) -> dict[str, Any]:
    """What the fake upstream saw of one run (its control endpoint)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{target.upstream_url}/bench/runs/{run}") as answer,
    ):
        seen: dict[str, Any] = await answer.json()
        return seen


async def burst(
    target: Target, *, turns: int = 200, tokens: int = 20, rate: float = 50.0
) -> Result:
    """`turns` WS clients, connected first, start a turn in the same instant:
    how long `turn.started` takes when the service must accept them all at once."""
    _, specs = stream_specs(turns, tokens=tokens, rate=rate, barrier=False)
    async with measuring(target) as cost:
        figures = stream_figures(await run_phase(target, "ws", specs), tokens)
    return {
        "params": {"turns": turns, "tokens": tokens, "rate": rate},
        "outcomes": figures["outcomes"],
        "turn_started_ms": figures.get("turn_started_ms", {"n": 0}),
        "request_to_upstream_ms": figures["request_to_upstream_ms"],
        "ttft_ms": figures["ttft_ms"],
        **_costs(cost, figures["tokens"], turns),
        "cost": cost.to_json(),
    }


async def db_writes(
    target: Target, *, turns: int = 10, lengths: tuple[int, ...] = (20, 200, 2000)
) -> Result:
    """Database writes per turn against answer length, counted by the database.

    Unpaced answers finish within one checkpoint interval, so what is left is
    the per-turn cost; paced answers (50 tokens/s) add one checkpoint per
    interval of streaming, i.e. writes grow with a turn's duration, never with
    its token count."""
    report: Result = {"params": {"turns": turns, "lengths": list(lengths)}}
    for label, rate, sizes in (("unpaced", 0.0, lengths), ("paced_50_per_s", 50.0, (25, 100))):
        rows: Result = {}
        for length in sizes:
            _, specs = stream_specs(turns, tokens=length, rate=rate, barrier=False)
            async with measuring(target) as cost:
                results = await run_phase(target, "ws", specs)
            rows[str(length)] = {
                "complete": sum(1 for r in results if r.tokens == length),
                "writes_per_turn": None if cost.writes is None else round(cost.writes / turns, 2),
                "ops_per_turn": None
                if cost.ops is None
                else {k: round(v / turns, 2) for k, v in cost.ops.items() if v},
            }
        report[label] = rows
    return report
