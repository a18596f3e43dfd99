"""Search by words: what is found, for whom, and after what (storage/terms.py).

A message is found when, for each word asked, it holds a word beginning with
it, case and accents aside. Answers are found however they ended (cancelled
ones too), imported conversations are found by their new owner only, and
messages stored before search terms are found once the background pass of a
restart has indexed them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from tests.conftest import Service, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply


async def search(
    service: Service, query: str, user: str = "alice", tenant: str | None = None
) -> list[dict[str, Any]]:
    async with service.http.get(
        "/api/search", params={"q": query}, headers=service.headers(user, tenant)
    ) as response:
        assert response.status == 200, await response.text()
        items: list[dict[str, Any]] = (await response.json())["items"]
        return items


def places(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(item["role"], item["seq"]) for item in items]


async def test_words_are_found_by_their_beginnings_whatever_their_case_and_accents(
    service: Service,
) -> None:
    ws = await service.ws()
    first = await ws.turn("Crème brûlée for the WEEKEND party")
    conversation_id = first[0]["conversation_id"]
    await ws.turn("A weekday lunch", conversation_id=conversation_id)
    await ws.close()

    hits = await search(service, "creme BRUL")
    assert places(hits) == [("assistant", 2), ("user", 1)]
    assert hits[1]["snippet"] == "Crème brûlée for the WEEKEND party"
    assert hits[0]["conversation_id"] == conversation_id
    assert places(await search(service, "week")) == [
        ("assistant", 4), ("user", 3), ("assistant", 2), ("user", 1),
    ]  # fmt: skip
    assert places(await search(service, "party weekend")) == [("assistant", 2), ("user", 1)]
    assert await search(service, "weekend lunch") == []  # every word, in one message
    assert await search(service, "eekend") == []  # beginnings of words, not their insides
    assert await search(service, "?!") == []  # no word asked: nothing found
    for user, tenant in (("bob", None), ("alice", "other")):
        assert await search(service, "creme", user, tenant) == []


async def test_a_long_message_shows_the_first_match_in_its_snippet(service: Service) -> None:
    ws = await service.ws()
    await ws.turn("filler " * 60 + "the needle is here " + "filler " * 60)
    await ws.close()

    snippet = (await search(service, "needl"))[-1]["snippet"]
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "the needle is here" in snippet


async def test_a_cancelled_answer_is_found_by_what_it_kept(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.endless(chunk="zucchini ", delay=0.02))
    ws = await service.ws()
    turn_id = new_turn_id()
    await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Count vegetables"})
    await ws.until("turn.delta")
    await ws.send({"type": "turn.cancel", "turn_id": turn_id})
    ended = (await ws.until("turn.cancelled"))[-1]
    await ws.close()

    hits = await search(service, "zucch")
    assert [(hit["role"], hit["message_id"]) for hit in hits] == [
        ("assistant", ended["message"]["id"])
    ]


async def test_an_imported_conversation_is_found_by_its_new_owner_only(
    service: Service,
) -> None:
    ws = await service.ws("alice")
    started = await ws.turn("Rhubarb crumble")
    await ws.close()
    url = f"/api/conversations/{started[0]['conversation_id']}/export?format=json"
    async with service.http.get(url, headers=service.headers("alice")) as response:
        document = await response.json()
    headers = {**service.headers("bob"), "Content-Type": "application/json"}
    async with service.http.post(
        "/api/conversations/import", data=orjson.dumps(document), headers=headers
    ) as response:
        assert response.status == 201
        imported = await response.json()

    bobs = await search(service, "rhubarb", user="bob")
    assert {hit["conversation_id"] for hit in bobs} == {imported["id"]}
    assert places(bobs) == [("assistant", 2), ("user", 1)]
    alices = await search(service, "rhubarb", user="alice")
    assert {hit["conversation_id"] for hit in alices} == {started[0]["conversation_id"]}


async def test_messages_stored_before_search_terms_are_indexed_after_a_restart(
    service: Service,
) -> None:
    ws = await service.ws()
    await ws.turn("Quince paste")
    await ws.close()
    # As an earlier version stored them: no terms.
    await service.db.messages.update_many({}, {"$unset": {"terms": ""}})
    assert await search(service, "quince") == []

    await service.restart()
    hits: list[dict[str, Any]] = []
    for _ in range(200):  # the pass runs in the background after start-up, a message at a time
        hits = await search(service, "quince")
        if len(hits) == 2:
            break
        await asyncio.sleep(0.05)
    assert places(hits) == [("assistant", 2), ("user", 1)]
    assert await service.db.messages.count_documents({"terms": {"$exists": False}}) == 0
