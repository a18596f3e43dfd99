"""The reference client (`clients/python/chat_client`) against the real service.

Connections are cut by a TCP relay in between (`tcp_cutter.py`), as a network
cuts them: the client must reconnect, resume after the last `seq` it took,
and end with the whole answer, no delta lost and none repeated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from chat_client import ApiError, ChatClient, WsSession

from server.sync.cursor import SyncCursor
from tests.conftest import Service, eventually, make_token
from tests.contract_check import CHECKED
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.tcp_cutter import TcpCutter

WORDS = [f"w{i} " for i in range(60)]
WHOLE = "".join(WORDS)


@pytest.fixture
async def cutter(service: Service) -> AsyncIterator[TcpCutter]:
    relay = TcpCutter(service.http.server.port)  # type: ignore[arg-type]
    await relay.start()
    yield relay
    await relay.close()


@pytest.fixture
async def client(cutter: TcpCutter) -> AsyncIterator[ChatClient]:
    # Every body and frame it receives is checked against the documents, as the tests' own.
    async with (
        aiohttp.ClientSession(**CHECKED) as http,
        ChatClient(cutter.url, make_token("alice"), session=http) as chat,
    ):
        yield chat


def assert_each_delta_once(events: list[dict[str, Any]]) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)), f"a seq repeated or went back: {seqs}"
    assert not [e for e in events if e["type"] == "turn.snapshot"], "live, not rebuilt"


async def test_ws_resumes_after_a_dropped_connection_losing_and_repeating_nothing(
    client: ChatClient, cutter: TcpCutter, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text(WORDS, delay=0.02))
    socket = await client.connect(heartbeat=5)
    events: list[dict[str, Any]] = []
    async for event in socket.ask("Count"):
        events.append(event)
        deltas = [e for e in events if e["type"] == "turn.delta"]
        if len(deltas) == 10 and socket.reconnects == 0:
            assert cutter.cut() >= 1  # mid-answer: the socket is gone
    await socket.close()

    assert socket.reconnects == 1 and cutter.connections >= 2  # (and the catch-up's sync)
    assert_each_delta_once(events)
    text = "".join(e["text"] for e in events if e["type"] == "turn.delta")
    assert text == WHOLE, "every delta once, in order, across the drop"
    assert events[0]["type"] == "turn.started" and events[-1]["type"] == "turn.done"
    assert events[-1]["message"]["content"] == WHOLE


async def test_a_start_lost_with_the_connection_is_sent_again_once(
    client: ChatClient, cutter: TcpCutter, fake: FakeAnthropic, service: Service
) -> None:
    """The socket dies before the `turn.start` reaches the service: after the reconnect
    the client asks (`not_found`) and sends it again; one turn, one answer."""
    fake.script(Reply.text(["Once."]))
    socket = await client.connect(heartbeat=5)
    cutter.cut()
    events = [event async for event in socket.ask("Hello")]
    await socket.close()
    assert events[-1]["type"] == "turn.done" and events[-1]["message"]["content"] == "Once."
    assert len(fake.requests) == 1
    assert await service.db.turns.count_documents({}) == 1


async def test_sse_resumes_with_last_event_id_after_a_dropped_stream(
    client: ChatClient, cutter: TcpCutter, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text(WORDS, delay=0.02))
    events: list[dict[str, Any]] = []
    async for event in client.ask_sse("Count"):
        events.append(event)
        if len([e for e in events if e["type"] == "turn.delta"]) == 10 and cutter.connections == 1:
            cutter.cut()
    assert cutter.connections == 2, "one POST, one re-attach"
    assert_each_delta_once(events)
    assert "".join(e["text"] for e in events if e["type"] == "turn.delta") == WHOLE
    assert events[-1]["type"] == "turn.done"


async def test_cancel_ends_the_turn_wherever_it_is_followed(
    client: ChatClient, fake: FakeAnthropic
) -> None:
    fake.script(Reply.endless(chunk="tick ", delay=0.01))
    socket = await client.connect()
    events = socket.ask("Go on")
    seen = [await anext(events), await anext(events)]
    assert await client.cancel(seen[0]["turn_id"]) is True
    seen += [event async for event in events]
    assert seen[-1]["type"] == "turn.cancelled"
    assert seen[-1]["message"]["content"].startswith("tick ")
    assert await client.cancel(seen[0]["turn_id"]) is False  # it had ended
    await socket.close()


async def test_the_mirror_follows_pushes_and_catches_up_after_a_drop(
    client: ChatClient, cutter: TcpCutter, service: Service
) -> None:
    soup = await client.create_conversation(title="Soup")
    await client.catch_up()
    assert set(client.mirror.conversations) == {soup["id"]}
    socket = await client.connect(heartbeat=5)

    # Another device renames it: pushed.
    elsewhere = service.headers()
    await service.http.patch(
        f"/api/conversations/{soup['id']}", json={"title": "Winter"}, headers=elsewhere
    )

    async def renamed() -> bool:
        return client.mirror.conversations[soup["id"]]["title"] == "Winter"

    assert await eventually(renamed)

    # The socket drops; meanwhile another device deletes it and starts a new one.
    cutter.cut()
    await service.http.delete(f"/api/conversations/{soup['id']}", headers=elsewhere)
    created = await service.http.post(
        "/api/conversations", json={"title": "Bread"}, headers=elsewhere
    )
    bread = (await created.json())["id"]

    async def caught_up() -> bool:  # through /api/sync, on the reconnect
        return socket.reconnects == 1 and set(client.mirror.conversations) == {bread}

    assert await eventually(caught_up)
    await socket.close()


async def test_an_expired_cursor_starts_over(client: ChatClient) -> None:
    kept = await client.create_conversation(title="Kept")
    client.mirror.cursor = SyncCursor(datetime.now(UTC) - timedelta(days=40)).encode()
    client.mirror.conversations["ghost"] = {"id": "ghost"}
    with pytest.raises(ApiError) as expired:
        await client.sync(client.mirror.cursor)
    assert expired.value.code == "sync_expired" and expired.value.status == 410
    await client.catch_up()
    assert set(client.mirror.conversations) == {kept["id"]}


async def test_running_turns_and_tools(client: ChatClient, fake: FakeAnthropic) -> None:
    fake.script(Reply.text(WORDS, delay=0.02))
    socket: WsSession = await client.connect()
    events = socket.ask("Count")
    started = await anext(events)
    running = await client.running_turns()
    assert [t["turn_id"] for t in running] == [started["turn_id"]]
    assert {"calculate", "search_conversations"} <= {t["name"] for t in await client.tools()}
    assert [e async for e in events][-1]["type"] == "turn.done"
    await socket.close()


async def test_filters_export_import_and_share(client: ChatClient, service: Service) -> None:
    soup = await client.create_conversation(title="Soup", project="Kitchen", tags=["Winter"])
    note = await client.create_conversation(title="Note")
    await client.update_conversation(note["id"], pinned=True)

    def titles(page: dict[str, Any]) -> list[str]:
        return [c["title"] for c in page["items"]]

    assert titles(await client.conversations()) == ["Note", "Soup"]  # pinned first
    assert titles(await client.conversations(project="Kitchen")) == ["Soup"]
    assert titles(await client.conversations(unfiled=True)) == ["Note"]
    assert titles(await client.conversations(tag="winter", pinned=False)) == ["Soup"]
    assert await client.projects() == [{"name": "Kitchen", "count": 1}]
    assert await client.tags() == [{"name": "winter", "count": 1}]
    with pytest.raises(ApiError) as refused:
        await client.conversations(project="Kitchen", unfiled=True)
    assert refused.value.code == "validation_error"

    document = await client.export(soup["id"])
    copy = await client.import_conversation(document)
    assert copy["id"] != soup["id"] and copy["title"] == "Soup"
    made = await client.share(soup["id"])
    async with service.http.get(made["url"].replace(client.base_url, "")) as page:
        assert page.status == 200
    await client.revoke_share(made["id"])
    async with service.http.get(made["url"].replace(client.base_url, "")) as page:
        assert page.status == 404
