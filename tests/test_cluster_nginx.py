"""Three `python -m server` processes behind Debian's nginx in plain round robin (no sticky
sessions), on one database and one real `redis-server`: whichever process a request
lands on serves it as the turn's owner would.

Which process holds a socket or stream is read from each process's own `/metrics`
(open WebSockets, SSE streams, running turns), so the tests prove that a resume, a
re-attach or a cancel really crossed processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cluster_client import (
    AUTH,
    ENDINGS,
    WORDS,
    as_client_sees,
    assert_live_after,
    deltas_text,
    log_lines,
    redis_available,
    stored_answer,
)
from tests.conftest import WS, eventually, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.nginx_proxy import NGINX, Proxy, running_nginx
from tests.redis_server import RedisServer
from tests.server_process import ServerProcess, several
from tests.sse_client import SseReader

pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (`.ci/run` installs Debian's nginx)"
)


@dataclass
class Deployment:
    proxy: Proxy
    processes: list[ServerProcess]
    session: aiohttp.ClientSession

    async def gauge(self, process: ServerProcess, name: str) -> float:
        async with self.session.get(f"{process.base_url}/metrics") as response:
            assert response.status == 200, await response.text()
            for line in (await response.text()).splitlines():
                if line.startswith(f"{name} "):
                    return float(line.split()[1])
        raise AssertionError(f"{name} is not in {process.base_url}/metrics")

    async def holding(self, name: str) -> list[ServerProcess]:
        """The live processes whose gauge `name` is above zero."""
        alive = [p for p in self.processes if p.process and p.process.returncode is None]
        return [p for p in alive if await self.gauge(p, name) > 0]

    async def sockets(self, count: int) -> list[WS]:
        """`count` sockets through nginx, asserted to be on as many different processes.

        Judged from the gauges once all are open (each process holding at most one, and
        `count` in all), not from a before/after difference per socket: a scrape taken
        while another socket's registration is in flight made that difference flaky.
        """
        opened = []
        for _ in range(count):
            raw = await self.session.ws_connect(
                f"{self.proxy.url}/ws", headers=AUTH, ssl=self.proxy.tls
            )
            ws = WS(raw)
            assert (await ws.recv())["type"] == "ready"
            opened.append(ws)

        async def spread() -> list[float]:
            return [await self.gauge(p, "chat_ws_connections_open") for p in self.processes]

        counts = (
            await eventually(lambda: _when(spread, lambda c: sum(c) == count and max(c) == 1))
            or await spread()
        )
        assert sum(counts) == count and max(counts) == 1, f"round robin: {counts}"
        return opened


async def _when(read: Any, good: Any) -> Any:
    """`read()`'s value when `good` holds for it, else None (for `eventually`)."""
    value = await read()
    return value if good(value) else None


@pytest.fixture
async def deployment(
    mongo_uri: str, fake: FakeAnthropic, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[Deployment]:
    async with (
        several(
            ("a", "b", "c"), fake.base_url, tmp_path, mongo_uri, start=True,
            REDIS_URL=redis_server.url,
        ) as processes,
        running_nginx(
            tmp_path / "nginx", [int(p.env["PORT"]) for p in processes], sticky=False
        ) as proxy,
        aiohttp.ClientSession() as session,
    ):  # fmt: skip
        yield Deployment(proxy, processes, session)


async def test_resume_and_sse_reattach_land_on_other_processes_and_stay_live(
    deployment: Deployment, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text(WORDS, delay=0.02), Reply.text(WORDS, delay=0.02))
    here, there = await deployment.sockets(2)
    started = await here.turn_started("Count")
    seen = [started, *await here.until("turn.delta")]
    after_seq = seen[-1]["seq"]
    await there.send({"type": "turn.resume", "turn_id": started["turn_id"], "after_seq": after_seq})
    followed = await there.until(*ENDINGS)

    assert_live_after(followed, after_seq)
    assert deltas_text(seen, up_to=after_seq) + deltas_text(followed) == "".join(WORDS)
    assert followed[-1]["message"]["content"] == "".join(WORDS)

    # SSE: POSTed to one process, the stream dropped, re-attached through nginx elsewhere.
    proxy, session = deployment.proxy, deployment.session
    async with session.post(
        f"{proxy.url}/api/turns",
        json={"turn_id": new_turn_id(), "content": "Count again"},
        headers=AUTH,
        ssl=proxy.tls,
    ) as posted:
        first = await SseReader(posted).until("turn.delta")
        owners = await deployment.holding("chat_turns_running")
    turn_id, last_id = first[0].data["turn_id"], first[-1].id
    assert last_id is not None and len(owners) == 1
    headers = {**AUTH, "Last-Event-ID": last_id}
    url = f"{proxy.url}/api/turns/{turn_id}/events"
    async with session.get(url, headers=headers, ssl=proxy.tls) as got:
        reader = SseReader(got)
        rest = await reader.until("turn.delta")
        streaming = await deployment.holding("chat_sse_streams_open")
        rest += await reader.until()

    assert [p for p in streaming if p is not owners[0]], "re-attached on another process"
    assert_live_after([e.data for e in rest], int(last_id))
    before = deltas_text([e.data for e in first])
    assert before + deltas_text([e.data for e in rest]) == "".join(WORDS)
    assert rest[-1].event == "turn.done"
    await asyncio.gather(here.close(), there.close())


async def test_cancel_from_a_third_process_and_kill_of_the_owner(
    deployment: Deployment, fake: FakeAnthropic
) -> None:
    fake.script(Reply.endless(delay=0.01), Reply.endless(delay=0.01))
    here, there, third = await deployment.sockets(3)
    started = await here.turn_started("Count")
    await here.until("turn.delta")
    await third.send({"type": "turn.cancel", "turn_id": started["turn_id"]})
    ending = (await here.until(*ENDINGS))[-1]

    assert ending["type"] == "turn.cancelled"
    assert await fake.requests[0].wait_finished(within=5)
    assert fake.requests[0].closed_by_client.is_set(), "the upstream was stopped"
    await third.send({"type": "ping"})
    assert (await third.recv())["type"] == "pong", "the cancel was accepted where it landed"

    # The owner killed mid-turn: its follower on another process ends as `interrupted`.
    again = await here.turn_started("Again", conversation_id=started["conversation_id"])
    await here.until("turn.delta")
    owner = (await deployment.holding("chat_turns_running"))[0]
    await there.send({"type": "turn.resume", "turn_id": again["turn_id"], "after_seq": 1})
    live = await there.until("turn.delta")

    async def checkpointed() -> bool:
        answer = await stored_answer(deployment.session, owner, started["conversation_id"])
        return answer["status"] == "streaming" and bool(answer["content"])

    assert await eventually(checkpointed)
    await owner.kill()
    rest = await there.until(*ENDINGS, timeout=20)

    assert rest[-1]["type"] == "turn.error" and rest[-1]["code"] == "interrupted"
    survivor = next(p for p in deployment.processes if p is not owner)
    stored = await stored_answer(deployment.session, survivor, started["conversation_id"])
    assert stored["status"] == "interrupted"
    assert as_client_sees(live + rest) == stored["content"]
    await there.close()


async def test_redis_stopped_mid_turn_then_restarted(
    deployment: Deployment, fake: FakeAnthropic, redis_server: RedisServer
) -> None:
    long_answer = [f"v{i} " for i in range(150)]
    fake.script(Reply.text(long_answer, delay=0.02), Reply.text(WORDS, delay=0.02))
    here, there = await deployment.sockets(2)
    started = await here.turn_started("Count")
    await here.until("turn.delta")
    await there.send({"type": "turn.resume", "turn_id": started["turn_id"], "after_seq": 1})
    live = await there.until("turn.delta")

    await redis_server.stop()
    rest = await there.until(*ENDINGS)
    owner_frames = await here.until(*ENDINGS)

    whole = "".join(long_answer)
    assert "turn.snapshot" in [f["type"] for f in rest], "carried on from MongoDB"
    seqs = [f["seq"] for f in live + rest]
    assert seqs == sorted(seqs), "seq never goes back"
    assert as_client_sees(live + rest) == whole
    assert owner_frames[-1]["type"] == "turn.done"
    owner = deployment.processes[0]
    stored = await stored_answer(deployment.session, owner, started["conversation_id"])
    assert stored["content"] == whole and stored["status"] == "complete"

    await redis_server.start()
    for process in deployment.processes:
        assert await eventually(
            lambda p=process: redis_available(deployment.session, p), timeout=10
        )
    for process in deployment.processes:
        assert log_lines(process, "is back") <= 1
    again = await here.turn_started("Again", conversation_id=started["conversation_id"])
    seen = [again, *await here.until("turn.delta")]
    await there.send({"type": "turn.resume", "turn_id": again["turn_id"], "after_seq": 1})
    followed = await there.until(*ENDINGS)
    assert_live_after(followed, 1)
    assert deltas_text(seen, up_to=1) + deltas_text(followed) == "".join(WORDS)
    await asyncio.gather(here.close(), there.close())
