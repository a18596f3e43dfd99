"""Two devices of one user on two processes meeting in a real `redis-server`.

A rename and an archive made through one process reach the socket on the other
(the latency is printed, never asserted: speed is the benchmarks' business); a turn
started on one device is listed by the other process's `GET /api/turns?status=running`
and followed live from there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cluster_client import AUTH, ENDINGS, WORDS, assert_live_after, deltas_text
from tests.conftest import WS, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.redis_server import RedisServer
from tests.server_process import ServerProcess, connect, several

TARGET_MS = 100  # what the issue asks; printed against, not asserted
ARRIVES_WITHIN = 10.0  # a push that comes at all comes well within this: not a timing bound


@pytest.fixture
async def processes(
    mongo_uri: str, fake: FakeAnthropic, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[list[ServerProcess]]:
    fake.script(Reply.text(WORDS, delay=0.02))
    async with several(
        ("a", "b"), fake.base_url, tmp_path, mongo_uri, start=True, REDIS_URL=redis_server.url
    ) as started:
        yield started


async def timed_push(
    ws: WS, kind: str, field: str, key: str, value: Any, sent_at: float
) -> tuple[dict[str, Any], float]:
    """The first push of `kind` whose `field` has `key` equal to `value`, and how long after
    `sent_at` it came."""
    deadline = sent_at + ARRIVES_WITHIN
    while True:
        frame = (await ws.until(kind, timeout=max(0.01, deadline - time.monotonic())))[-1]
        if frame[field][key] == value:
            return frame, time.monotonic() - sent_at


async def test_a_rename_and_an_archive_on_one_process_reach_the_socket_on_the_other(
    processes: list[ServerProcess], session: aiohttp.ClientSession
) -> None:
    a, b = processes
    laptop = await connect(session, a, AUTH, pushes=True)
    phone = await connect(session, b, AUTH, pushes=True)
    async with session.post(
        f"{a.base_url}/api/conversations", json={"title": "Soup"}, headers=AUTH
    ) as response:
        conversation = await response.json()
    url = f"{a.base_url}/api/conversations/{conversation['id']}"
    changed = ("conversation.changed", "conversation")
    created, _ = await timed_push(phone, *changed, "id", conversation["id"], time.monotonic())
    assert created["conversation"] == conversation

    for change, expected in (
        ({"title": "Winter soups"}, "title"),
        ({"archived": True}, "archived"),
    ):
        sent_at = time.monotonic()
        async with session.patch(url, json=change, headers=AUTH) as response:
            assert response.status == 200
            answered_at = time.monotonic()
        value = change[expected]
        pushed, latency = await timed_push(phone, *changed, expected, value, sent_at)
        assert pushed["conversation"][expected] == value
        print(
            f"{expected}: on the other process's socket {latency * 1000:.1f} ms after the PATCH "
            f"was sent (its answer took {(answered_at - sent_at) * 1000:.1f} ms; "
            f"target {TARGET_MS} ms)"
        )
    # The socket of the process that made the change was told too.
    assert (await laptop.until("conversation.changed"))[-1]["conversation"]["id"] == conversation[
        "id"
    ]
    # And the push's cursor catches up from there through the other process.
    async with session.get(
        f"{b.base_url}/api/sync", params={"since": pushed["cursor"]}, headers=AUTH
    ) as response:
        assert (await response.json())["conversations"] == []
    await asyncio.gather(laptop.close(), phone.close())


async def test_a_turn_started_on_one_process_is_listed_and_followed_live_on_the_other(
    processes: list[ServerProcess], session: aiohttp.ClientSession
) -> None:
    a, b = processes
    laptop = await connect(session, a, AUTH, pushes=True)
    phone = await connect(session, b, AUTH, pushes=True)
    await laptop.send({"type": "turn.start", "turn_id": new_turn_id(), "content": "Count"})
    started = (await laptop.until("turn.started"))[-1]
    seen_by_laptop = [started, *await laptop.until("turn.delta")]

    turn_id = started["turn_id"]
    _, latency = await timed_push(
        phone, "turn.running", "turn", "turn_id", turn_id, time.monotonic()
    )
    print(f"turn.running on the other process within {latency * 1000:.1f} ms of the first delta")
    async with session.get(
        f"{b.base_url}/api/turns", params={"status": "running"}, headers=AUTH
    ) as response:
        listed = (await response.json())["items"]
    assert [t["turn_id"] for t in listed] == [started["turn_id"]]
    assert listed[0]["conversation_id"] == started["conversation_id"]
    assert listed[0]["last_seq"] >= 2, "from the turn's Redis stream"

    after_seq = listed[0]["last_seq"]
    await phone.send({"type": "turn.resume", "turn_id": started["turn_id"], "after_seq": 0})
    # The phone's socket also carries pushes (a `conversation.changed` as the turn
    # moves its conversation up, in any order with the turn's frames): the turn's own.
    followed = [f for f in await phone.until(*ENDINGS) if f.get("turn_id") == turn_id]
    seen_by_laptop += await laptop.until(*ENDINGS)

    assert followed[0]["type"] == "turn.started"
    assert_live_after(followed[1:], 1)
    whole = "".join(WORDS)
    assert deltas_text(followed) == whole == deltas_text(seen_by_laptop)
    assert followed[-1]["type"] == "turn.done" and followed[-1]["message"]["content"] == whole
    assert after_seq < followed[-1]["seq"]
    async with session.get(
        f"{b.base_url}/api/turns", params={"status": "running"}, headers=AUTH
    ) as response:
        assert (await response.json())["items"] == []
    await asyncio.gather(laptop.close(), phone.close())
