"""Fairness: another tenant's time to first token while one user floods at its limits.

The victim (a user of its own tenant, on one WebSocket) runs short turns one
after another, first on an idle service, then while the flooder runs: as many
sockets as the per-user connection limit allows (and a few more, refused),
each sending `turn.start` as fast as the default frame guard lets a client
(20 a second), so that the flooder always holds its full share of running
turns, each an unpaced answer as long as the upstream can make it. Most of
its starts are refused (`too_many_turns`, `rate_limited`): a refusal must
cost the service next to nothing, or the refusals themselves starve others.

The figure that matters is the victim's time to first token under the flood
against idle (target: within 2 times).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from typing import Any

import aiohttp
import orjson

from bench.clients import RelaySocket, StreamResult, new_session
from bench.measure import measuring
from bench.phase import stream_figures, stream_specs
from bench.stamps import StreamSpec
from bench.target import Target

FLOOD_FRAMES_PER_SECOND = 20.0  # the service's default WS_FRAMES_PER_SECOND
FLOOD_TOKENS = 2000  # each of the flooder's answers, unpaced
WARM_UP_SECONDS = 2.0  # the flood runs this long before the victim measures


async def fairness(
    target: Target,
    *,
    victim_turns: int = 20,
    victim_tokens: int = 20,
    flood_sockets: int = 36,
    warm_up: float = WARM_UP_SECONDS,
) -> dict[str, Any]:
    """The victim's figures idle, then under a flood of `flood_sockets` sockets of one user."""
    idle = await _victim(target, victim_turns, victim_tokens)
    flooder = f"bench-flooder-{uuid.uuid4().hex[:8]}"
    answers: Counter[str] = Counter()
    async with new_session() as session:
        sockets = await asyncio.gather(
            *(_open(session, target, flooder, "flood") for _ in range(flood_sockets)),
            return_exceptions=True,
        )
        opened = [s for s in sockets if isinstance(s, aiohttp.ClientWebSocketResponse)]
        floods = [asyncio.create_task(_flood(ws, answers)) for ws in opened]
        try:
            await asyncio.sleep(warm_up)
            async with measuring(target) as cost:
                flooded = await _victim(target, victim_turns, victim_tokens)
        finally:
            for task in floods:
                task.cancel()
            await asyncio.gather(*floods, return_exceptions=True)
            await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    ratio = _ratio(flooded["ttft_ms"], idle["ttft_ms"])
    return {
        "params": {
            "victim_turns": victim_turns,
            "victim_tokens": victim_tokens,
            "flood_sockets": flood_sockets,
            "flood_frames_per_socket_per_s": FLOOD_FRAMES_PER_SECOND,
            "flood_tokens": FLOOD_TOKENS,
        },
        "flood_sockets_open": len(opened),
        "flood_answers": dict(answers),
        "victim_ttft_ms": {"idle": idle["ttft_ms"], "flooded": flooded["ttft_ms"]},
        "victim_turn_started_ms": {
            "idle": idle.get("turn_started_ms"),
            "flooded": flooded.get("turn_started_ms"),
        },
        "victim_outcomes": {"idle": idle["outcomes"], "flooded": flooded["outcomes"]},
        "victim_ttft_p50_ratio": ratio,
        "service_cpu_share_flooded": cost.cpu_share("service"),
        "database_cpu_share_flooded": cost.cpu_share("database"),
    }


async def _victim(target: Target, turns: int, tokens: int) -> dict[str, Any]:
    """`turns` short turns, one after another, on one socket of a user of another tenant."""
    run = uuid.uuid4().hex[:12]
    specs = [StreamSpec(run, f"v{i}", tokens, 0.0) for i in range(turns)]
    results = [StreamResult(spec.key) for spec in specs]
    async with new_session() as session:
        socket = RelaySocket(await _open(session, target, f"bench-victim-{run}", "victim"))
        try:
            for spec, result in zip(specs, results, strict=True):
                await socket.stream(spec, result)
        finally:
            await socket.close()
    return stream_figures(results, tokens)


async def _open(
    session: aiohttp.ClientSession, target: Target, user: str, tenant: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(target.ws_url(), headers=target.auth(user, tenant=tenant))
    first = await ws.receive(timeout=30)
    if first.type != aiohttp.WSMsgType.TEXT or orjson.loads(first.data).get("type") != "ready":
        await ws.close()
        raise ConnectionError(f"refused: {first.data!r}")
    return ws


async def _flood(ws: aiohttp.ClientWebSocketResponse, answers: Counter[str]) -> None:
    """Start turns at the frame guard's pace, reading (and counting) whatever comes back."""
    _, specs = stream_specs(1, tokens=FLOOD_TOKENS, rate=0.0, barrier=False, prefix="f")
    prompt = specs[0].prompt()

    async def read() -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                return
            frame = orjson.loads(message.data)
            kind = frame.get("type")
            if kind == "error":
                answers[f"error:{frame.get('code')}"] += 1
            elif kind in ("turn.started", "turn.done", "turn.error", "turn.cancelled"):
                answers[str(kind)] += 1

    reader = asyncio.create_task(read())
    try:
        while not reader.done() and not ws.closed:
            frame = {"type": "turn.start", "turn_id": str(uuid.uuid4()), "content": prompt}
            with contextlib.suppress(ConnectionResetError):
                await ws.send_str(orjson.dumps(frame).decode())
            await asyncio.sleep(1 / FLOOD_FRAMES_PER_SECOND)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


def _ratio(flooded: dict[str, Any], idle: dict[str, Any]) -> float | None:
    if not flooded.get("n") or not idle.get("n") or not idle.get("p50"):
        return None
    return round(flooded["p50"] / idle["p50"], 2)
