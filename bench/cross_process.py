"""`python -m bench.cross_process`: two services on one database, a turn's owner and another.

What several processes behind a load balancer cost a client whose request lands
on the process that does not run its turn, with `REDIS_URL` set (Redis Streams
and Pub/Sub) or not (MongoDB: checkpoints and the cancel flag):

- **cancel**: `POST /api/turns/{id}/cancel` sent to the other process, to the
  moment the fake upstream saw the owner close the model's stream;
- **resume**: a follower on the other process, resumed right after
  `turn.started`, against the starter on the owner: per-token latency (arrival
  minus the fake's stamp) and how many frames were snapshots.

`REDIS_URL=redis://127.0.0.1:6379/0 python -m bench.cross_process` for the
Redis figures; without it, the MongoDB ones. Speed is measured, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.clients import StreamResult, new_session
from bench.idle import raise_open_file_limit
from bench.service import running_service
from bench.stamps import TOKEN, StreamSpec, now_us
from bench.stats import summarize, summarize_us
from bench.target import Target, fresh_user
from bench.upstream_process import upstream_process
from bench.workloads import upstream_run

CANCEL_AFTER_SECONDS = (0.2, 0.6)


@dataclass
class Follow:
    """One turn: started on the owner, followed (or cancelled) through the other process."""

    spec: StreamSpec
    user: str = field(default_factory=lambda: fresh_user("cross"))
    starter: StreamResult = field(init=False)
    follower: StreamResult = field(init=False)
    snapshots: int = 0
    # The follower's token latencies once it is live: tokens stamped after its
    # first delta (the backlog a late resume catches up on is not the relay's pace).
    live_us: list[int] = field(default_factory=list)
    first_token: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.starter, self.follower = StreamResult(self.spec.key), StreamResult(self.spec.key)


async def frames(ws: aiohttp.ClientWebSocketResponse) -> Any:
    async for message in ws:
        yield now_us(), orjson.loads(message.data)


async def open_ws(session: aiohttp.ClientSession, target: Target, user: str) -> Any:
    ws = await session.ws_connect(target.ws_url(), headers=target.auth(user))
    assert orjson.loads((await ws.receive(timeout=30)).data)["type"] == "ready"
    return ws


async def read_turn(
    ws: aiohttp.ClientWebSocketResponse,
    result: StreamResult,
    first_token: asyncio.Event,
    follow: Follow | None = None,
) -> None:
    async for arrival, frame in frames(ws):
        kind = frame["type"]
        if kind == "turn.delta":
            live_since = result.first_token_us
            result.absorb(frame["text"], arrival)
            if follow is None:
                first_token.set()
            elif live_since is not None:
                stamps = (int(m.group(2)) for m in TOKEN.finditer(frame["text"]))
                follow.live_us += [arrival - s for s in stamps if s > live_since]
        elif kind == "turn.snapshot" and follow is not None:
            follow.snapshots += 1
        elif kind in ("turn.done", "turn.cancelled", "turn.error", "error"):
            result.outcome, result.ended_us = kind, arrival
            return


async def one_turn(
    session: aiohttp.ClientSession, owner: Target, other: Target, follow: Follow, *, cancel: bool
) -> None:
    here = await open_ws(session, owner, follow.user)
    there = await open_ws(session, other, follow.user)
    turn_id = str(uuid.uuid4())
    await here.send_str(
        orjson.dumps(
            {"type": "turn.start", "turn_id": turn_id, "content": follow.spec.prompt()}
        ).decode()
    )
    started = orjson.loads((await here.receive(timeout=30)).data)
    assert started["type"] == "turn.started", started
    await there.send_str(
        orjson.dumps({"type": "turn.resume", "turn_id": turn_id, "after_seq": 1}).decode()
    )
    reading = asyncio.gather(
        read_turn(here, follow.starter, follow.first_token),
        read_turn(there, follow.follower, follow.first_token, follow),
    )
    if cancel:
        await follow.first_token.wait()
        await asyncio.sleep(random.uniform(*CANCEL_AFTER_SECONDS))
        follow.starter.cancel_sent_us = now_us()
        url = other.url(f"/api/turns/{turn_id}/cancel")
        async with session.post(url, headers=other.auth(follow.user)) as answer:
            assert answer.status == 202, await answer.text()
    await asyncio.wait_for(reading, 120)
    await asyncio.gather(here.close(), there.close())


async def measure(turns: int, tokens: int, rate: float) -> dict[str, Any]:
    with upstream_process() as upstream:
        async with running_service(upstream.base_url, upstream.pid) as first:
            owner = first.target
            async with running_service(
                upstream.base_url, upstream.pid, shared_database=owner.database_uri
            ) as second:
                other = second.target
                run = uuid.uuid4().hex[:8]
                follows = [Follow(StreamSpec(run, f"f{i}", tokens, rate)) for i in range(turns)]
                cancels = [
                    Follow(StreamSpec(run, f"c{i}", 100_000, rate, endless=True))
                    for i in range(turns)
                ]
                async with new_session() as session:
                    await asyncio.gather(
                        *(one_turn(session, owner, other, f, cancel=False) for f in follows)
                    )
                    await asyncio.gather(
                        *(one_turn(session, owner, other, c, cancel=True) for c in cancels)
                    )
                seen = await upstream_run(owner, run)
    closed = [seen["streams"].get(c.spec.key, {}).get("closed_us") for c in cancels]
    return {
        "params": {"turns": turns, "tokens": tokens, "rate": rate},
        "cancel_elsewhere_to_upstream_closed_ms": summarize_us(
            [
                None
                if t is None or c.starter.cancel_sent_us is None
                else t - c.starter.cancel_sent_us
                for t, c in zip(closed, cancels, strict=True)
            ]
        ),
        "cancel_outcomes": sorted({c.starter.outcome for c in cancels}),
        "owner_token_latency_ms": summarize_us(
            [x for f in follows for x in f.starter.latencies_us]
        ),
        "follower_live_token_latency_ms": summarize_us([x for f in follows for x in f.live_us]),
        "follower_token_latency_ms": summarize_us(
            [x for f in follows for x in f.follower.latencies_us]
        ),
        "follower_snapshots": summarize([f.snapshots for f in follows]),
        "follower_outcomes": sorted({f.follower.outcome for f in follows}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cross_process", description=__doc__)
    parser.add_argument("--turns", type=int, default=50, help="turns at once (and as many cancels)")
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()
    raise_open_file_limit()
    print(json.dumps(asyncio.run(measure(args.turns, args.tokens, args.rate)), indent=2))


if __name__ == "__main__":
    main()
