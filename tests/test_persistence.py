"""What is stored stays stored: across restarts, in the embedded database, and readiness."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from server.identity import Identity
from server.storage.embedded import EmbeddedMongo
from server.storage.indexes import CONVERSATION_SEQ, ensure_indexes
from server.storage.turn_records import TurnRecord, turn_key
from server.storage.turns import TurnStore
from server.storage.values import new_id, now
from tests.api_client import expect_problem, sse_turn
from tests.conftest import Service, new_turn_id, text_of, with_database
from tests.fake_anthropic import FakeAnthropic


async def get_json(service: Service, path: str) -> Any:
    response = await service.http.get(path, headers=service.headers("alice", "acme"))
    assert response.status == 200, await response.text()
    return await response.json()


async def write_a_conversation(service: Service) -> tuple[dict[str, Any], dict[str, Any]]:
    """A conversation with one finished turn; returns it and its message page, as read back."""
    created = await service.http.post(
        "/api/conversations",
        json={"title": "Keep me", "system_prompt": "Be brief.", "model": "claude-test-small"},
        headers=service.headers("alice", "acme"),
    )
    assert created.status == 201
    conversation_id = (await created.json())["id"]
    events = await sse_turn(
        service, "remember this", tenant="acme", conversation_id=conversation_id
    )
    assert events[-1]["type"] == "turn.done"
    conversation = await get_json(service, f"/api/conversations/{conversation_id}")
    messages = await get_json(service, f"/api/conversations/{conversation_id}/messages")
    assert [m["content"] for m in messages["items"]] == ["remember this", "Echo: remember this"]
    return conversation, messages


async def test_conversations_and_messages_survive_a_restart_of_service_and_database(
    env: dict[str, str], fake: FakeAnthropic, tmp_path: Path
) -> None:
    # A database server of the test's own, so that the test can stop and start it.
    database = EmbeddedMongo(tmp_path / "own.sqlite3")
    env["MONGODB_URI"] = with_database(await asyncio.to_thread(database.start), "durable")
    service = Service(env, fake)
    try:
        await service.start()
        conversation, messages = await write_a_conversation(service)
        conversation_id = conversation["id"]

        await service.stop()
        await asyncio.to_thread(database.stop)
        env["MONGODB_URI"] = with_database(await asyncio.to_thread(database.start), "durable")
        await service.start()

        assert await get_json(service, f"/api/conversations/{conversation_id}") == conversation
        path = f"/api/conversations/{conversation_id}/messages"
        assert await get_json(service, path) == messages
        listed = await get_json(service, "/api/conversations")
        assert [c["id"] for c in listed["items"]] == [conversation_id]
        # The conversation goes on where it stopped: the next turn's messages follow on.
        events = await sse_turn(service, "and this", tenant="acme", conversation_id=conversation_id)
        assert events[-1]["type"] == "turn.done"
        after = await get_json(service, path)
        assert [m["seq"] for m in after["items"]] == [1, 2, 3, 4]
        assert after["items"][-1]["content"] == "Echo: and this"
    finally:
        await service.close()
        await asyncio.to_thread(database.stop)


async def test_the_embedded_database_keeps_data_in_data_dir_across_restarts(
    env: dict[str, str], fake: FakeAnthropic
) -> None:
    if os.environ.get("MONGODB_URI"):
        pytest.skip("MONGODB_URI is set: the service would not start its embedded database")
    del env["MONGODB_URI"]
    service = Service(env, fake)
    await service.start()
    try:
        conversation, messages = await write_a_conversation(service)
        assert (Path(env["DATA_DIR"]) / "chat.sqlite3").is_file()

        await service.restart()

        path = f"/api/conversations/{conversation['id']}"
        assert await get_json(service, path) == conversation
        assert await get_json(service, f"{path}/messages") == messages
    finally:
        await service.close()


async def test_readyz_is_503_while_the_database_does_not_answer(
    env: dict[str, str], fake: FakeAnthropic, tmp_path: Path
) -> None:
    # A database server of the test's own, so that the test can stop it.
    database = EmbeddedMongo(tmp_path / "own.sqlite3")
    env["MONGODB_URI"] = with_database(await asyncio.to_thread(database.start), "ready")
    service = Service(env, fake)
    running = True
    try:
        await service.start()
        assert (await service.http.get("/readyz")).status == 200

        await asyncio.to_thread(database.stop)
        running = False
        for attempt in range(2):  # the pooled connection breaks; then no server is found
            started = time.monotonic()
            response = await service.http.get("/readyz")
            elapsed = time.monotonic() - started
            problem = await expect_problem(response, 503, "storage_unavailable")
            assert "127.0.0.1" not in problem["detail"], "no internal address on a public probe"
            assert elapsed < 5, (attempt, elapsed)
        health = await service.http.get("/healthz")
        assert health.status == 200
    finally:
        await service.close()
        if running:
            await asyncio.to_thread(database.stop)


async def test_indexes_of_earlier_versions_are_replaced_at_start_up(mongo_uri: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    db = client.get_default_database()
    try:
        # As an earlier version left them: turn ids unique by an index, seqs by a unique one.
        owner_turn = [("tenant_id", 1), ("user_id", 1), ("turn_id", 1)]
        await db.turns.create_index(owner_turn, unique=True, name="owner_turn")
        await db.messages.create_index(CONVERSATION_SEQ, unique=True, name="conversation_seq")
        # ...and one-field indexes, each a copy of every search term on the embedded database.
        await db.turns.create_index([("conversation_id", 1)], name="conversation")
        await db.messages.create_index([("status", 1)], name="status")

        await ensure_indexes(db, embedded=True, tombstone_seconds=86_400)

        turns = {index["name"] async for index in await db.turns.list_indexes()}
        assert {"owner_turn", "conversation"}.isdisjoint(turns)
        assert {"status_lease", "conversation_turns"} <= turns
        messages = {index["name"] async for index in await db.messages.list_indexes()}
        assert "status" not in messages and "search_terms" in messages
        seq = await index_named(db.messages, "conversation_seq")
        assert seq["key"] == dict(CONVERSATION_SEQ) and not seq.get("unique")

        await ensure_indexes(
            db, embedded=False, tombstone_seconds=86_400
        )  # moved to a MongoDB: unique again
        assert (await index_named(db.messages, "conversation_seq")).get("unique") is True
    finally:
        await client.close()


async def index_named(collection: Any, name: str) -> dict[str, Any]:
    found: dict[str, Any] = {
        index["name"]: index async for index in await collection.list_indexes()
    }[name]
    return found


async def test_a_turn_stored_by_an_earlier_version_is_still_replayed_by_its_turn_id(
    service: Service, fake: FakeAnthropic
) -> None:
    ws = await service.ws()
    turn_id = new_turn_id()
    first = await ws.turn("Remember me", turn_id=turn_id)
    assert first[-1]["type"] == "turn.done"
    await ws.close()
    # As an earlier version stored it: the turn's `_id` a random id, not its owner and turn_id.
    stored = await service.db.turns.find_one({"turn_id": turn_id})
    await service.db.turns.delete_one({"_id": stored["_id"]})
    await service.db.turns.insert_one({**stored, "_id": "65a1b2c3d4e5f60718293a4b"})

    await service.restart()  # the upgrade
    ws = await service.ws()
    again = await ws.turn("Remember me", turn_id=turn_id)

    assert again[-1]["type"] == "turn.done"
    assert text_of(again) == text_of(first)
    assert len(fake.requests) == 1  # replayed, not asked again
    assert await service.db.turns.count_documents({"turn_id": turn_id}) == 1
    await ws.close()


async def test_one_checkpoint_renews_the_leases_of_500_running_turns(mongo_uri: str) -> None:
    """Regression: at 500 turns the embedded database refused the checkpoint's `$in` as an
    expression too deep, the leases ran out, and running turns were recovered as dead."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    db = client.get_default_database()
    try:
        identity, moment = Identity("acme", "alice"), now()
        records = [
            TurnRecord(
                id=turn_key(identity, f"t{n}"),
                turn_id=f"t{n}",
                identity=identity,
                conversation_id=f"c{n}",
                user_message_id=new_id(),
                assistant_message_id=new_id(),
                assistant_seq=2,
                model="claude-test",
                created_at=moment,
                new_conversation=False,
            )
            for n in range(500)
        ]
        expired = moment - timedelta(seconds=1)
        await db.turns.insert_many(
            [
                {
                    **r.identity.scope,
                    "_id": r.id,
                    "turn_id": r.turn_id,
                    "status": "running",
                    "owner": "this-process",
                    "lease_expires_at": expired,
                }
                for r in records
            ]
        )
        store = TurnStore(db, owner="this-process", lease_seconds=30)

        states = await store.checkpoint_many([(record, None) for record in records])

        assert len(states) == 500 and set(states.values()) == {"held"}
        renewed = {"lease_expires_at": {"$gt": moment}, "owner": "this-process"}
        assert await db.turns.count_documents(renewed) == 500
    finally:
        await client.close()


async def test_the_sweep_never_recovers_this_processs_own_turns(mongo_uri: str) -> None:
    """Regression (make bench, 1,000 streams): a checkpoint late on an overloaded database let
    a lease run out, and the process's own sweep stopped its live turn as interrupted."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    db = client.get_default_database()
    try:
        expired = now() - timedelta(seconds=1)
        await db.turns.insert_many(
            [
                {
                    "_id": f"turn-of-{owner}",
                    "turn_id": owner,
                    "status": "running",
                    "owner": owner,
                    "lease_expires_at": expired,
                    "conversation_id": "c",
                    "tenant_id": "acme",
                    "user_id": "alice",
                    "assistant_message_id": f"answer-of-{owner}",
                }
                for owner in ("this-process", "a-dead-process")
            ]
        )
        store = TurnStore(db, owner="this-process", lease_seconds=30)

        assert len(await store.recover(everything=False)) == 1

        statuses = {doc["turn_id"]: doc["status"] async for doc in db.turns.find({})}
        assert statuses == {"this-process": "running", "a-dead-process": "interrupted"}
    finally:
        await client.close()
