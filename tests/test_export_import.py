"""Export and import: a conversation's tree leaves as a versioned document and comes back
whole for another user; Markdown reads as the branch shown; bad documents leave nothing.

A real service, real turns through the SDK against the fake provider (a tool call, a
regenerated answer: a tree with two branches), real HTTP throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tests.conftest import Service
from tests.fake_anthropic import Reply, Text, Thinking, ToolUse

ANSWER = (
    "Here it is:\n\n| city | weather |\n|---|---|\n| Paris | sunny |\n\n"
    "```python\nprint('hi')\n```\n"
)
Json = dict[str, Any]


async def tree_with_a_tool_call(service: Service, user: str = "alice") -> str:
    """A question answered twice (the second answer, regenerated, calls a tool): its id."""
    service.fake.script(
        Reply.text(["A plain first answer."]),
        Reply.blocks(
            Thinking("The user wants the weather."),
            Text([ANSWER]),
            ToolUse("toolu_w1", "get_weather", {"location": "Paris"}),
            stop_reason="tool_use",
        ),
        Reply.text(["Sunny, as the tool says."]),
    )
    ws = await service.ws(user)
    try:
        first = await ws.turn("What is the weather in Paris?")
        assert first[-1]["type"] == "turn.done", first[-1]
        started = first[0]
        again = await ws.turn(
            None,  # type: ignore[arg-type]
            conversation_id=started["conversation_id"],
            regenerate_message_id=started["assistant_message_id"],
        )
        assert again[-1]["type"] == "turn.done", again[-1]
    finally:
        await ws.close()
    answer = again[-1]["message"]["id"]
    rating = {"rating": "down", "comment": "Too sunny."}
    url = f"/api/messages/{answer}/feedback"
    async with service.http.put(url, json=rating, headers=service.headers(user)) as r:
        assert r.status == 200
    return str(started["conversation_id"])


async def export(service: Service, conversation_id: str, kind: str, user: str = "alice") -> Any:
    url = f"/api/conversations/{conversation_id}/export?format={kind}"
    async with service.http.get(url, headers=service.headers(user)) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Disposition"].startswith("attachment; filename=")
        return await r.json() if kind == "json" else await r.text()


async def import_document(service: Service, body: Any, user: str = "bob") -> tuple[int, Json]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {**service.headers(user), "Content-Type": "application/json"}
    async with service.http.post("/api/conversations/import", data=data, headers=headers) as r:
        return r.status, await r.json()


def shape(document: Json) -> list[Json]:
    """The tree with its ids replaced by their places, and its turns by their order."""
    places = {m["id"]: n for n, m in enumerate(document["messages"])}
    turns: dict[str, int] = {}
    return [
        {
            **{k: v for k, v in m.items() if k not in {"id", "parent_id", "turn_id"}},
            "parent": None if m["parent_id"] is None else places[m["parent_id"]],
            "turn": turns.setdefault(m["turn_id"], len(turns)),
        }
        for m in document["messages"]
    ]


async def test_a_tree_exported_and_imported_by_another_user_is_the_same_tree(
    service: Service,
) -> None:
    conversation_id = await tree_with_a_tool_call(service)
    original = await export(service, conversation_id, "json")
    assert (original["format"], original["version"]) == ("chat-service.conversation", 1)
    assert len(original["messages"]) == 3  # a question and its two answers
    assert "alice" not in orjson.dumps(original).decode()  # nothing of its owner

    status, created = await import_document(service, original, user="bob")
    assert status == 201, created
    copy = await export(service, created["id"], "json", user="bob")
    assert shape(copy) == shape(original)  # blocks, feedback, times, the branches
    assert {m["id"] for m in copy["messages"]}.isdisjoint(m["id"] for m in original["messages"])
    assert created["current_leaf"] == copy["messages"][-1]["id"]
    for field in ("title", "model", "system_prompt", "thinking", "archived", "created_at"):
        assert copy["conversation"][field] == original["conversation"][field], field
    stored = await service.db["messages"].find({"conversation_id": created["id"]}).to_list()
    assert {(m["tenant_id"], m["user_id"]) for m in stored} == {("default", "bob")}
    turn_ids = {m["turn_id"] for m in stored}
    assert turn_ids.isdisjoint(m["turn_id"] for m in original["messages"])

    # The same user may import it again: a third, separate conversation.
    status, again = await import_document(service, original, user="alice")
    assert status == 201 and again["id"] not in {conversation_id, created["id"]}


async def test_markdown_reads_as_the_branch_shown(service: Service) -> None:
    conversation_id = await tree_with_a_tool_call(service)
    text = await export(service, conversation_id, "markdown")
    assert "## You\n\nWhat is the weather in Paris?" in text
    assert "| city | weather |\n|---|---|\n| Paris | sunny |" in text  # the table, intact
    assert "```python\nprint('hi')\n```" in text
    assert "<details>\n<summary>Tool call: get_weather</summary>" in text
    assert '"location": "Paris"' in text and "Result (ok):" in text
    assert "Sunny in Paris, 21 °C" in text  # the tool's result
    assert "<summary>Thinking</summary>\n\nThe user wants the weather." in text
    assert "A plain first answer." not in text  # the other branch


async def test_the_bulk_export_streams_every_conversation_as_json_lines(
    service: Service,
) -> None:
    await tree_with_a_tool_call(service)
    for title in ("Two", "Three"):
        async with service.http.post(
            "/api/conversations", json={"title": title}, headers=service.headers()
        ) as r:
            assert r.status == 201
    async with service.http.get("/api/export", headers=service.headers()) as r:
        assert r.status == 200
        assert r.content_type == "application/x-ndjson"
        lines = (await r.read()).splitlines()
    documents = [orjson.loads(line) for line in lines]
    assert len(documents) == 3
    assert {d["format"] for d in documents} == {"chat-service.conversation"}
    assert sorted(len(d["messages"]) for d in documents) == [0, 0, 3]
    async with service.http.get("/api/export", headers=service.headers("carol")) as r:
        assert await r.read() == b""  # another user's: nothing


async def test_bad_documents_are_refused_precisely_and_leave_nothing(service: Service) -> None:
    conversation_id = await tree_with_a_tool_call(service)
    good = await export(service, conversation_id, "json")
    first, second = good["messages"][0], good["messages"][1]
    cases: list[tuple[Any, int, str]] = [
        (b'{"format": "chat-service.conversation", "version": 1,', 400, "malformed_json"),
        ({**good, "version": 2}, 422, "version"),
        ({**good, "format": "something-else"}, 422, "format"),
        ({**good, "messages": [first, {**second, "id": first["id"]}]}, 422, "same id twice"),
        ({**good, "messages": [{**second, "parent_id": "elsewhere"}]}, 422, "outside"),
        (
            {**good, "conversation": {**good["conversation"], "current_leaf": "nowhere"}},
            422,
            "current_leaf",
        ),
        ({**good, "messages": [{**first, "role": "system"}]}, 422, "role"),
    ]
    for body, status, words in cases:
        got, problem = await import_document(service, body)
        assert (got, words in orjson.dumps(problem).decode()) == (status, True), problem
    assert await service.db["conversations"].count_documents({"user_id": "bob"}) == 0
    assert await service.db["messages"].count_documents({"user_id": "bob"}) == 0
    url = f"/api/conversations/{conversation_id}/export"
    async with service.http.get(url, headers=service.headers("bob")) as r:
        assert r.status == 404  # another user's conversation does not exist for bob
    async with service.http.get(f"{url}?format=pdf", headers=service.headers()) as r:
        assert r.status == 422


async def test_an_import_over_the_limit_is_refused_while_it_streams_in(service: Service) -> None:
    await service.reconfigure(IMPORT_MAX_BYTES="65536")
    headers = {**service.headers("bob"), "Content-Type": "application/json"}
    sent = 0
    total_chunks = 64  # 4 MiB, far over the limit

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(total_chunks):
            sent += 1
            yield b" " * 65536
            await asyncio.sleep(0)

    async with service.http.post("/api/conversations/import", data=body(), headers=headers) as r:
        assert r.status == 413
        assert (await r.json())["code"] == "payload_too_large"
    assert sent < total_chunks  # refused before the client had sent it all
    big = b" " * 70_000  # a declared length over the limit: refused before reading
    async with service.http.post("/api/conversations/import", data=big, headers=headers) as r:
        assert r.status == 413


async def test_an_import_larger_than_the_api_body_limit_but_within_its_own_passes(
    service: Service,
) -> None:
    conversation_id = await tree_with_a_tool_call(service)
    document = await export(service, conversation_id, "json")
    document["messages"][0]["content"] = "x" * 300_000  # over the 256 KiB of other bodies
    # From a deployment with other models and a larger output limit: made to run here.
    thinking = {"type": "enabled", "budget_tokens": 100_000}
    document["conversation"] |= {"model": "claude-elsewhere", "thinking": thinking}
    status, created = await import_document(service, document)
    assert status == 201, created
    assert (created["model"], created["thinking"]) == ("claude-test-large", None)
