"""A conversation's messages over REST: what a turn stored, paged by `seq`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_client import expect_problem, sse_turn
from tests.conftest import Service

MESSAGE_FIELDS = {
    "id",
    "conversation_id",
    "seq",
    "role",
    "blocks",
    "content",
    "status",
    "turn_id",
    "model",
    "usage",
    "stop_reason",
    "created_at",
}


async def new_conversation(service: Service, **body: Any) -> str:
    response = await service.http.post("/api/conversations", json=body, headers=service.headers())
    assert response.status == 201
    conversation_id: str = (await response.json())["id"]
    return conversation_id


async def messages_page(service: Service, conversation_id: str, query: str = "") -> dict[str, Any]:
    response = await service.http.get(
        f"/api/conversations/{conversation_id}/messages{query}", headers=service.headers()
    )
    assert response.status == 200, await response.text()
    page: dict[str, Any] = await response.json()
    return page


async def test_a_turn_leaves_the_question_and_the_answer_in_the_history(service: Service) -> None:
    conversation_id = await new_conversation(service, model="claude-test-small")
    events = await sse_turn(service, "hello there", conversation_id=conversation_id, turn_id="t-1")
    assert events[0]["type"] == "turn.started" and events[-1]["type"] == "turn.done"

    page = await messages_page(service, conversation_id)

    assert page["next_cursor"] is None
    question, answer = page["items"]
    # `error` is ours beyond the contract's fields: why an answer failed, else null.
    assert (
        question.keys()
        == answer.keys()
        == {*MESSAGE_FIELDS, "error", "parent_id", "feedback", "siblings"}
    )
    assert answer["error"] is None
    assert (question["seq"], question["role"], question["content"], question["status"]) == (
        1,
        "user",
        "hello there",
        "complete",
    )
    assert (answer["seq"], answer["role"], answer["content"], answer["status"]) == (
        2,
        "assistant",
        "Echo: hello there",
        "complete",
    )
    assert {question["turn_id"], answer["turn_id"]} == {"t-1"}
    assert {question["conversation_id"], answer["conversation_id"]} == {conversation_id}
    assert answer["model"] == "claude-test-small"
    assert answer["stop_reason"] == "end_turn"
    assert set(answer["usage"]) == {
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "web_search_requests",
        "cost_usd",
    }
    assert answer["id"] == events[0]["assistant_message_id"]
    assert question["id"] == events[0]["user_message_id"]
    # In lists a message carries its siblings; the frame's message is the same without.
    assert answer.pop("siblings") == {"index": 0, "count": 1, "ids": [answer["id"]]}
    assert events[-1]["message"] == answer
    assert (question["parent_id"], answer["parent_id"]) == (None, question["id"])

    stored = await service.db.messages.find({"conversation_id": conversation_id}).to_list()
    assert sorted((m["seq"], m["role"], m["content"], m["status"]) for m in stored) == [
        (1, "user", "hello there", "complete"),
        (2, "assistant", "Echo: hello there", "complete"),
    ]
    assert {(m["tenant_id"], m["user_id"]) for m in stored} == {("default", "alice")}


async def test_a_turn_without_a_conversation_creates_one_that_lists_its_messages(
    service: Service,
) -> None:
    events = await sse_turn(service, "start fresh")
    conversation_id = events[0]["conversation_id"]
    listed = await service.http.get("/api/conversations", headers=service.headers())
    assert [c["id"] for c in (await listed.json())["items"]] == [conversation_id]
    page = await messages_page(service, conversation_id)
    assert [m["content"] for m in page["items"]] == ["start fresh", "Echo: start fresh"]


async def test_messages_page_backwards_with_before_oldest_first_within_a_page(
    service: Service,
) -> None:
    conversation_id = await new_conversation(service)
    for n in range(1, 4):
        await sse_turn(service, f"q{n}", conversation_id=conversation_id)

    first = await messages_page(service, conversation_id, "?limit=2")
    assert [m["seq"] for m in first["items"]] == [5, 6]
    assert [m["content"] for m in first["items"]] == ["q3", "Echo: q3"]
    assert first["next_cursor"] == 5

    second = await messages_page(
        service, conversation_id, f"?limit=2&before={first['next_cursor']}"
    )
    assert [m["seq"] for m in second["items"]] == [3, 4]
    assert second["next_cursor"] == 3

    last = await messages_page(service, conversation_id, f"?limit=2&before={second['next_cursor']}")
    assert [m["seq"] for m in last["items"]] == [1, 2]
    assert [m["role"] for m in last["items"]] == ["user", "assistant"]
    assert last["next_cursor"] is None

    uneven = await messages_page(service, conversation_id, "?limit=4")
    assert [m["seq"] for m in uneven["items"]] == [3, 4, 5, 6]
    rest = await messages_page(service, conversation_id, f"?limit=4&before={uneven['next_cursor']}")
    assert [m["seq"] for m in rest["items"]] == [1, 2]
    assert rest["next_cursor"] is None

    whole = await messages_page(service, conversation_id)
    assert [m["seq"] for m in whole["items"]] == [1, 2, 3, 4, 5, 6]
    assert whole["next_cursor"] is None


async def test_an_empty_conversation_has_no_messages(service: Service) -> None:
    conversation_id = await new_conversation(service)
    assert await messages_page(service, conversation_id) == {"items": [], "next_cursor": None}


async def test_messages_of_an_unknown_conversation_are_404(service: Service) -> None:
    response = await service.http.get(
        "/api/conversations/65a000000000000000000000/messages", headers=service.headers()
    )
    await expect_problem(response, 404, "not_found")


async def test_bad_message_parameters_are_422(service: Service, subtests: pytest.Subtests) -> None:
    conversation_id = await new_conversation(service)
    for query in ("limit=-1", "limit=abc", "limit=1000", "before=0", "before=-5", "before=abc"):
        with subtests.test(query):
            response = await service.http.get(
                f"/api/conversations/{conversation_id}/messages?{query}", headers=service.headers()
            )
            problem = await expect_problem(response, 422, "validation_error")
            assert problem["errors"][0]["field"] == query.partition("=")[0]
