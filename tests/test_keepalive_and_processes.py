"""Keep-alives, and two service processes sharing one database.

Two `Service`s on the same database stand in for two processes behind a load
balancer: each has its own engine and in-memory turn logs, and they meet
only in MongoDB, exactly as separate processes do.
"""

from __future__ import annotations

from tests.conftest import Service, new_turn_id, text_of
from tests.fake_anthropic import FakeAnthropic, Reply


async def test_sse_pings_while_waiting_for_the_first_token(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(SSE_PING_SECONDS="0.1")
    fake.script(Reply.text(["late"], first_delay=0.6))
    response = await service.http.post(
        "/api/turns", json={"turn_id": new_turn_id(), "content": "hi"}, headers=service.headers()
    )
    body = (await response.read()).decode()

    before_first_token = body[: body.index("event: turn.delta")]
    assert before_first_token.count(": ping") >= 2
    assert "event: turn.done" in body


async def test_resume_of_a_turn_running_in_another_process(
    service: Service, fake: FakeAnthropic, env: dict[str, str]
) -> None:
    other = await Service(dict(env), fake).start()
    try:
        chunks = [f"w{i} " for i in range(25)]
        fake.script(Reply.text(chunks, delay=0.04))
        ws = await service.ws()
        turn_id = new_turn_id()
        await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Go"})
        first = await ws.until("turn.delta")

        elsewhere = await other.ws()
        await elsewhere.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": 1})
        frames = await elsewhere.until("turn.done", "turn.error", "turn.cancelled")

        assert frames[0]["type"] == "turn.snapshot"
        assert frames[-1]["type"] == "turn.done"
        assert frames[-2]["type"] == "turn.snapshot"
        assert frames[-2]["message"]["content"] == "".join(chunks)
        assert frames[-1]["message"]["content"] == "".join(chunks)
        here = first + await ws.until("turn.done")
        assert text_of(here) == "".join(chunks)
        await ws.close()
        await elsewhere.close()
    finally:
        await other.close()


async def test_cancel_reaches_a_turn_running_in_another_process(
    service: Service, fake: FakeAnthropic, env: dict[str, str]
) -> None:
    other = await Service(dict(env), fake).start()
    try:
        fake.script(Reply.endless(chunk="tick ", delay=0.02))
        ws = await service.ws()
        turn_id = new_turn_id()
        await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Go"})
        await ws.until("turn.delta")

        response = await other.http.post(f"/api/turns/{turn_id}/cancel", headers=other.headers())
        assert response.status == 202

        frames = await ws.until("turn.cancelled", "turn.done", "turn.error")
        assert frames[-1]["type"] == "turn.cancelled"
        # Awaited, never waited on: the closed socket is only released by this loop.
        assert await fake.requests[-1].wait_finished(within=5)
        assert fake.requests[-1].closed_by_client.is_set()
        stored = await service.db.messages.find_one({"turn_id": turn_id, "role": "assistant"})
        assert stored["status"] == "cancelled"
        assert stored["content"] == frames[-1]["message"]["content"]
        status = await other.http.get(f"/api/turns/{turn_id}", headers=other.headers())
        assert (await status.json())["status"] == "cancelled"
        await ws.close()
    finally:
        await other.close()
