"""Run many streams at once, each on its own connection, and summarise what they saw.

A phase is one kind of client (direct, ws or sse) reading one set of
streams. WebSocket clients connect and authenticate first; then every
stream starts at the same moment, and the fake upstream's barrier holds the
tokens until all requests have reached it, so all streams are live together.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import aiohttp

from bench.clients import RelaySocket, StreamResult, direct_stream, new_session, sse_stream
from bench.stamps import StreamSpec
from bench.stats import summarize_us
from bench.target import Target

Kind = Literal["direct", "ws", "sse"]
CONNECT_CONCURRENCY = 100  # the service's listen backlog is finite
STREAM_SLACK_SECONDS = 120.0  # beyond its paced length, how long a stream may take


def stream_specs(
    count: int, *, tokens: int, rate: float, barrier: bool = True, prefix: str = "s"
) -> tuple[str, list[StreamSpec]]:
    run = uuid.uuid4().hex[:12]
    held = count if barrier else 0
    return run, [StreamSpec(run, f"{prefix}{i}", tokens, rate, held) for i in range(count)]


async def open_sockets(
    session: aiohttp.ClientSession, target: Target, count: int
) -> list[RelaySocket | BaseException]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> RelaySocket:
        async with gate:
            return await RelaySocket.open(session, target)

    return list(await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True))


async def run_phase(
    target: Target,
    kind: Kind,
    specs: Sequence[StreamSpec],
    *,
    cancel_after: dict[str, float] | None = None,
) -> list[StreamResult]:
    results = [StreamResult(spec.key) for spec in specs]
    longest = max((s.tokens / s.rate if s.rate > 0 else 0.0) for s in specs) if specs else 0.0
    limit = longest + STREAM_SLACK_SECONDS
    async with new_session() as session:
        sockets: list[RelaySocket | BaseException] = []
        if kind == "ws":
            sockets = await open_sockets(session, target, len(specs))

        async def one(index: int) -> None:
            spec, result = specs[index], results[index]
            try:
                async with asyncio.timeout(limit):
                    if kind == "direct":
                        await direct_stream(session, target, spec, result)
                    elif kind == "sse":
                        await sse_stream(session, target, spec, result)
                    else:
                        socket = sockets[index]
                        if isinstance(socket, BaseException):
                            result.outcome = f"failed:connect {type(socket).__name__}"
                            return
                        delay = (cancel_after or {}).get(spec.key)
                        await socket.stream(spec, result, cancel_after=delay)
            except TimeoutError:
                result.outcome = "timeout"
            except (aiohttp.ClientError, OSError, ValueError) as error:
                result.outcome = f"failed:{type(error).__name__}"

        await asyncio.gather(*(one(index) for index in range(len(specs))))
        await asyncio.gather(
            *(s.close() for s in sockets if isinstance(s, RelaySocket)), return_exceptions=True
        )
    return results


def stream_figures(results: Sequence[StreamResult], expected_tokens: int | None) -> dict[str, Any]:
    """What the clients saw: outcomes, completeness, per-token latency, first token, pace.

    `tokens_per_s` and `token_window_us` span the first token's arrival to the
    last one's, in any stream. `ttft_ms` leaves out the barrier's wait: it is
    the request's way to the upstream (client sent → the fake received it)
    plus the first token's way back (stamp → arrival), so it compares across
    workloads and with the baseline.
    """
    latencies = [latency for result in results for latency in result.latencies_us]
    tokens = sum(result.tokens for result in results)
    first = [r.first_token_us for r in results if r.first_token_us is not None]
    last = [r.last_token_us for r in results if r.last_token_us is not None]
    window = (min(first), max(last)) if first and last else None
    window_s = (window[1] - window[0]) / 1e6 if window else 0.0
    overhead = [
        r.upstream_arrival_us - r.sent_us
        for r in results
        if r.upstream_arrival_us is not None and r.sent_us is not None
    ]
    ttft = [
        r.upstream_arrival_us - r.sent_us + r.first_token_latency_us
        for r in results
        if r.upstream_arrival_us is not None
        and r.sent_us is not None
        and r.first_token_latency_us is not None
    ]
    figures: dict[str, Any] = {
        "streams": len(results),
        "outcomes": dict(Counter(result.outcome for result in results)),
        "tokens": tokens,
        "complete": sum(
            1
            for r in results
            if r.in_order and (expected_tokens is None or r.tokens == expected_tokens)
        ),
        "latency_ms": summarize_us(latencies),
        "request_to_upstream_ms": summarize_us(overhead),
        "ttft_ms": summarize_us(ttft),
        "tokens_per_s": round(tokens / window_s, 1) if window_s > 0 else None,
        "token_window_us": window,
    }
    started = [r.started_us - r.sent_us for r in results if r.started_us and r.sent_us]
    if started:
        figures["turn_started_ms"] = summarize_us(started)
    return figures
