"""Clients that come back: `/api/sync`, the running turns, and the pushes of one process.

The same across processes meeting in Redis: `test_sync_cluster.py`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.identity import Identity
from server.storage.changes import ChangeStore
from server.sync.changes import conversation_changed, conversation_deleted
from server.sync.cursor import MARGIN, SyncCursor
from server.sync.inbox import Inbox
from tests.cluster_client import ENDINGS
from tests.conftest import Service, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.query_plans import index_use

# Generous: a push within one process is a function call and a socket write.
PUSH_WITHIN = 1.0


async def get(service: Service, path: str, user: str = "alice") -> Any:
    async with service.http.get(path, headers=service.headers(user)) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def create(service: Service, title: str, user: str = "alice") -> dict[str, Any]:
    async with service.http.post(
        "/api/conversations", json={"title": title}, headers=service.headers(user)
    ) as response:
        assert response.status == 201
        created: dict[str, Any] = await response.json()
        return created


async def patch(service: Service, conversation_id: str, **changes: Any) -> dict[str, Any]:
    async with service.http.patch(
        f"/api/conversations/{conversation_id}", json=changes, headers=service.headers()
    ) as response:
        assert response.status == 200
        changed: dict[str, Any] = await response.json()
        return changed


async def delete(service: Service, conversation_id: str) -> None:
    async with service.http.delete(
        f"/api/conversations/{conversation_id}", headers=service.headers()
    ) as response:
        assert response.status == 204


async def test_sync_since_a_cursor_returns_exactly_a_rename_a_delete_and_a_new_conversation(
    service: Service,
) -> None:
    kept, renamed, deleted = [await create(service, t) for t in ("Kept", "Renamed", "Deleted")]
    first = await get(service, "/api/sync")
    assert {c["id"] for c in first["conversations"]} == {kept["id"], renamed["id"], deleted["id"]}
    assert first["deleted"] == [] and first["running_turns"] == []

    await patch(service, renamed["id"], title="Soups")
    await delete(service, deleted["id"])
    new = await create(service, "New")
    await create(service, "Bob's", user="bob")  # another user's change is not hers

    since = await get(service, f"/api/sync?since={first['cursor']}")
    assert sorted(c["id"] for c in since["conversations"]) == sorted([renamed["id"], new["id"]])
    assert {c["id"]: c["title"] for c in since["conversations"]}[renamed["id"]] == "Soups"
    assert since["deleted"] == [deleted["id"]]
    # Nothing more since then: the overlap that catches late writes sends nothing twice.
    again = await get(service, f"/api/sync?since={since['cursor']}")
    assert again["conversations"] == [] and again["deleted"] == []


async def test_sync_without_since_is_everything_archived_included(service: Service) -> None:
    shown = await create(service, "Shown")
    archived = await create(service, "Archived")
    await patch(service, archived["id"], archived=True)
    everything = await get(service, "/api/sync")
    by_id = {c["id"]: c for c in everything["conversations"]}
    assert set(by_id) == {shown["id"], archived["id"]} and by_id[archived["id"]]["archived"]
    assert isinstance(everything["cursor"], str)


async def test_a_change_stamped_before_the_cursor_but_stored_after_it_is_not_missed(
    service: Service,
) -> None:
    """Another process's slow write: stamped with its clock before this sync was read,
    visible only after. The cursor's overlap finds it; without it, it would be lost."""
    conversation = await create(service, "Slow")
    cursor = (await get(service, "/api/sync"))["cursor"]
    stamped_earlier = datetime.now(UTC) - MARGIN / 2
    await service.db.conversations.update_one(
        {"_id": conversation["id"]},
        {"$set": {"title": "Late", "changed_at": stamped_earlier}, "$inc": {"revision": 1}},
    )
    late = await get(service, f"/api/sync?since={cursor}")
    assert [c["title"] for c in late["conversations"]] == ["Late"]


async def test_a_cursor_that_is_not_one_is_422_and_an_expired_one_410(service: Service) -> None:
    for bad in ("nonsense", "eyJ4IjoxfQ", "W10", "x" * 7_000):
        async with service.http.get(
            "/api/sync", params={"since": bad}, headers=service.headers()
        ) as response:
            assert response.status == 422
            problem = await response.json()
            assert problem["code"] == "validation_error"
            assert problem["errors"][0]["field"] == "since"
    old = SyncCursor(datetime.now(UTC) - timedelta(days=31)).encode()
    async with service.http.get(
        "/api/sync", params={"since": old}, headers=service.headers()
    ) as response:
        assert response.status == 410
        assert (await response.json())["code"] == "sync_expired"
    # The setting moves the horizon: kept 60 days, the same cursor is fine.
    await service.reconfigure(SYNC_TOMBSTONE_DAYS="60")
    assert (await get(service, f"/api/sync?since={old}"))["deleted"] == []


async def test_tombstones_expire_through_a_ttl_index_of_the_setting(service: Service) -> None:
    await service.reconfigure(SYNC_TOMBSTONE_DAYS="7")
    indexes = {i["name"]: i async for i in await service.db.tombstones.list_indexes()}
    assert indexes["expiry"]["expireAfterSeconds"] == 7 * 86_400
    assert list(indexes["owner_deleted"]["key"]) == ["tenant_id", "user_id", "deleted_at"]
    await service.reconfigure(SYNC_TOMBSTONE_DAYS="30")  # changed: the index is remade
    indexes = {i["name"]: i async for i in await service.db.tombstones.list_indexes()}
    assert indexes["expiry"]["expireAfterSeconds"] == 30 * 86_400


async def test_a_flood_of_syncs_is_rate_limited(service: Service) -> None:
    await service.reconfigure(SYNC_PER_MINUTE="3")
    for _ in range(3):
        await get(service, "/api/sync")
    async with service.http.get("/api/sync", headers=service.headers()) as response:
        assert response.status == 429
        assert (await response.json())["code"] == "rate_limited"
        assert float(response.headers["Retry-After"]) > 0
    await get(service, "/api/sync", user="bob")  # per user


async def test_running_turns_are_listed_while_they_run_and_never_another_users(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text([f"w{i} " for i in range(40)], delay=0.03))
    ws = await service.ws()
    started = await ws.turn_started("Count")
    await ws.until("turn.delta")

    listed = (await get(service, "/api/turns?status=running"))["items"]
    assert [t["turn_id"] for t in listed] == [started["turn_id"]]
    assert listed[0]["conversation_id"] == started["conversation_id"]
    assert listed[0]["last_seq"] >= 2 and listed[0]["started_at"]
    assert (await get(service, "/api/turns?status=running", user="bob"))["items"] == []
    synced = await get(service, "/api/sync")
    assert [t["turn_id"] for t in synced["running_turns"]] == [started["turn_id"]]

    await ws.until(*ENDINGS)
    assert (await get(service, "/api/turns?status=running"))["items"] == []
    for query in ("", "?status=done"):
        async with service.http.get(f"/api/turns{query}", headers=service.headers()) as response:
            assert response.status == 422
    await ws.close()


async def test_a_turn_running_elsewhere_says_how_far_its_last_checkpoint_got(
    service: Service,
) -> None:
    """Without Redis, a turn another process runs is known from storage only."""
    turn_id = new_turn_id()
    moment = datetime.now(UTC)
    await service.db.turns.insert_one(
        {
            "_id": f'["default","alice","{turn_id}"]',
            "tenant_id": "default",
            "user_id": "alice",
            "turn_id": turn_id,
            "conversation_id": "c1",
            "assistant_message_id": "m1",
            "status": "running",
            "created_at": moment,
        }
    )
    await service.db.messages.insert_one({"_id": "m1", "last_seq": 17})
    listed = (await get(service, "/api/turns?status=running"))["items"]
    assert listed == [
        {
            "turn_id": turn_id,
            "conversation_id": "c1",
            "started_at": listed[0]["started_at"],
            "last_seq": 17,
        }
    ]
    assert datetime.fromisoformat(listed[0]["started_at"]) == moment.replace(
        microsecond=moment.microsecond // 1000 * 1000
    )


async def push(ws: Any, kind: str, timeout: float = PUSH_WITHIN) -> dict[str, Any]:
    frame: dict[str, Any] = (await ws.until(kind, timeout=timeout))[-1]
    return frame


async def test_every_socket_of_the_user_is_pushed_a_rename_an_archive_and_a_delete(
    service: Service,
) -> None:
    phone, laptop = await service.ws(pushes=True), await service.ws(pushes=True)
    bob = await service.ws("bob", pushes=True)
    conversation = await create(service, "Soup")
    for ws in (phone, laptop):
        created = await push(ws, "conversation.changed")
        assert created["conversation"] == conversation

    await patch(service, conversation["id"], title="Winter soups")
    renamed = await push(laptop, "conversation.changed")
    assert renamed["conversation"]["title"] == "Winter soups"
    # The push's cursor catches up from there: nothing more happened since.
    caught = await get(service, f"/api/sync?since={renamed['cursor']}")
    assert caught["conversations"] == []

    await patch(service, conversation["id"], archived=True)
    assert (await push(laptop, "conversation.changed"))["conversation"]["archived"] is True
    await delete(service, conversation["id"])
    gone = await push(laptop, "conversation.deleted")
    assert gone["conversation_id"] == conversation["id"]
    types = [f["type"] for f in await phone.until("conversation.deleted")]
    assert types == ["conversation.changed", "conversation.changed", "conversation.deleted"]

    await bob.send({"type": "ping"})
    assert (await bob.recv())["type"] == "pong", "nothing of hers reached bob"
    for ws in (phone, laptop, bob):
        await ws.close()


async def test_a_turn_started_on_one_socket_is_pushed_to_the_others_with_its_title(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text(["Leek ", "soup."], delay=0.05))
    phone, laptop = await service.ws(pushes=True), await service.ws(pushes=True)
    await phone.send({"type": "turn.start", "turn_id": new_turn_id(), "content": "Soup?"})
    seen_by_phone = await phone.until("turn.started")
    started = seen_by_phone[-1]

    running = await push(laptop, "turn.running")
    assert running["turn"]["turn_id"] == started["turn_id"]
    assert running["turn"]["conversation_id"] == started["conversation_id"]
    await laptop.send({"type": "turn.resume", "turn_id": started["turn_id"], "after_seq": 0})
    followed = await laptop.until("turn.done")
    assert followed[-1]["message"]["content"] == "Leek soup."

    # The service names the conversation after the first exchange: every socket learns it,
    # the one that asked too (nothing else tells it).
    for ws in (phone, laptop):
        while True:
            changed = await push(ws, "conversation.changed", timeout=5)
            seen_by_phone += [changed] if ws is phone else []
            if changed["conversation"]["title"] == "Fake title":
                break
    await phone.send({"type": "ping"})
    seen_by_phone += await phone.until("pong")
    # The socket that started the turn was not told what it knew already: that it runs,
    # and the conversation's new place in the list (it has `turn.done`).
    pushed_to_phone = [f for f in seen_by_phone if f["type"] in ("turn.running",)]
    assert pushed_to_phone == []
    titled = [f for f in seen_by_phone if f["type"] == "conversation.changed"]
    assert [f["conversation"]["title"] for f in titled] == ["Fake title"]
    await asyncio.gather(phone.close(), laptop.close())


def test_a_slow_sockets_pushes_are_coalesced_bounded_and_never_silently_short() -> None:
    alice = Identity("default", "alice")
    inbox = Inbox("socket-1", backlog=3)
    start = datetime(2025, 6, 1, tzinfo=UTC)

    def conversation(number: int, revision: int) -> dict[str, Any]:
        moment = start + timedelta(seconds=number * 60 + revision)
        return {
            "_id": f"c{number}",
            "title": f"t{number}.{revision}",
            "model": "m",
            "created_at": start,
            "updated_at": moment,
            "changed_at": moment,
            "revision": revision,
        }

    for revision in (1, 2, 3):  # one conversation renamed three times: one push, the last
        inbox.put(conversation_changed(alice, conversation(1, revision)))
    assert len(inbox) == 1
    for number in (2, 3, 4):  # beyond the backlog: c1's push is dropped
        inbox.put(conversation_changed(alice, conversation(number, 1)))
    assert len(inbox) == 3 and inbox.dropped == 1
    inbox.put(conversation_deleted(alice, {"_id": "c4", "deleted_at": start}))
    inbox.put(conversation_changed(alice, conversation(4, 2)))  # stale: after its deletion
    inbox.put(conversation_changed(alice, conversation(9, 1), origin="socket-1"))  # its own

    async def drain() -> list[dict[str, Any]]:
        return [await inbox.next() for _ in range(len(inbox))]

    frames = asyncio.run(drain())
    assert [f["type"] for f in frames] == [
        "conversation.changed",
        "conversation.changed",
        "conversation.deleted",
    ]
    assert [f.get("conversation", {}).get("id") for f in frames[:2]] == ["c2", "c3"]
    # Every cursor sent from then on goes back to the dropped push: a sync from any of them
    # finds c1's last rename.
    dropped_floor = start + timedelta(seconds=60 + 3) - MARGIN
    for frame in frames:
        assert SyncCursor.decode(frame["cursor"]).floor <= dropped_floor


async def test_a_sync_from_a_pinned_cursor_finds_the_dropped_change(service: Service) -> None:
    """The other half of the above, against the real service: the cursor a slow socket is
    sent after a drop brings the dropped change back."""
    dropped = await create(service, "Dropped")
    pinned = SyncCursor(datetime.now(UTC) - MARGIN - timedelta(seconds=1)).encode()
    later = await create(service, "Later")
    caught = await get(service, f"/api/sync?since={pinned}")
    assert {c["id"] for c in caught["conversations"]} == {dropped["id"], later["id"]}


async def test_pushes_arrive_within_the_generous_bound_on_one_process(service: Service) -> None:
    laptop = await service.ws(pushes=True)
    conversation = await create(service, "Timing")
    await push(laptop, "conversation.changed")
    begun = time.monotonic()
    await patch(service, conversation["id"], title="Timed")
    renamed = await push(laptop, "conversation.changed")
    latency = time.monotonic() - begun
    print(f"rename pushed in {latency * 1000:.1f} ms (one process, PATCH round trip included)")
    assert renamed["conversation"]["title"] == "Timed" and latency < PUSH_WITHIN
    await laptop.close()


@pytest.mark.parametrize("field", ["since"])
async def test_sync_needs_a_token(service: Service, field: str) -> None:
    async with service.http.get(f"/api/sync?{field}=x") as response:
        assert response.status == 401


async def test_the_change_feeds_reads_are_served_by_indexes(service: Service) -> None:
    """Their cost follows what changed, not the user's history: each read is a range of one
    user's index entries (tests/query_plans.py: MongoDB's planner, or SQLite's under the
    embedded database)."""
    changes = ChangeStore(service.db)
    alice, moment = Identity("default", "alice"), datetime.now(UTC)
    reads = {
        "owner_changed": changes.changed(alice, moment),
        "owner_deleted": changes.deleted(alice, moment),
        "owner_status": changes.running(alice),
    }
    for index, cursor in reads.items():
        plan = await cursor.explain()
        assert index_use(plan, index) is None, index_use(plan, index)
