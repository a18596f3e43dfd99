"""The conversations API as a client uses it: CRUD, ownership, paging and validation."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.api_client import expect_problem, sse_turn
from tests.conftest import Service

CONVERSATION_FIELDS = {
    "id",
    "title",
    "model",
    "system_prompt",
    "thinking",
    "archived",
    "project",
    "pinned",
    "tags",
    "current_leaf",
    "created_at",
    "updated_at",
    "usage",
}


async def create(
    service: Service, user: str = "alice", tenant: str | None = None, **body: Any
) -> dict[str, Any]:
    response = await service.http.post(
        "/api/conversations", json=body, headers=service.headers(user, tenant)
    )
    assert response.status == 201, await response.text()
    conversation: dict[str, Any] = await response.json()
    return conversation


async def list_page(service: Service, query: str = "", user: str = "alice") -> dict[str, Any]:
    response = await service.http.get(f"/api/conversations{query}", headers=service.headers(user))
    assert response.status == 200, await response.text()
    page: dict[str, Any] = await response.json()
    return page


# Health and the small routes


async def test_healthz_and_readyz_answer_without_a_token(service: Service) -> None:
    health = await service.http.get("/healthz")
    assert health.status == 200
    assert await health.json() == {"status": "ok", "pid": os.getpid()}  # the app runs in-process
    ready = await service.http.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {"status": "ok", "pid": os.getpid()}


async def test_me_names_the_tokens_user_and_tenant(service: Service) -> None:
    response = await service.http.get("/api/me", headers=service.headers("alice", "acme"))
    assert response.status == 200
    assert await response.json() == {"user_id": "alice", "tenant_id": "acme"}


async def test_models_lists_the_allowlist_and_the_default(service: Service) -> None:
    response = await service.http.get("/api/models", headers=service.headers())
    assert response.status == 200
    assert await response.json() == {
        "models": ["claude-test-large", "claude-test-small"],
        "default": "claude-test-large",
        "context_tokens": 100_000,  # CONTEXT_TOKEN_BUDGET's default: the page's context gauge
        "token_counts": "estimate",  # the suite's TOKEN_COUNTS (tests/conftest.py)
    }


# Create, read, update, delete


async def test_create_returns_the_conversation_and_stores_it_for_its_owner(
    service: Service,
) -> None:
    conversation = await create(
        service, tenant="acme", title="Trip", model="claude-test-small", system_prompt="Be brief."
    )
    assert conversation.keys() == CONVERSATION_FIELDS
    assert conversation["title"] == "Trip"
    assert conversation["model"] == "claude-test-small"
    assert conversation["system_prompt"] == "Be brief."
    assert conversation["archived"] is False
    assert conversation["created_at"] == conversation["updated_at"]
    stored = await service.db.conversations.find_one({"_id": conversation["id"]})
    assert stored["tenant_id"] == "acme" and stored["user_id"] == "alice"
    assert stored["title"] == "Trip" and stored["system_prompt"] == "Be brief."


async def test_create_with_an_empty_object_takes_the_defaults(service: Service) -> None:
    conversation = await create(service)
    assert conversation["title"] == ""
    assert conversation["model"] == "claude-test-large"
    assert conversation["system_prompt"] is None

    response = await service.http.get(
        f"/api/conversations/{conversation['id']}", headers=service.headers()
    )
    assert response.status == 200
    assert await response.json() == conversation


async def test_patch_changes_only_the_fields_sent_and_moves_the_conversation_first(
    service: Service,
) -> None:
    older = await create(service, title="Old", system_prompt="Keep me")
    newer = await create(service, title="New")
    assert [c["id"] for c in (await list_page(service))["items"]] == [newer["id"], older["id"]]

    response = await service.http.patch(
        f"/api/conversations/{older['id']}",
        json={"title": "Renamed", "model": "claude-test-small"},
        headers=service.headers(),
    )
    assert response.status == 200
    patched = await response.json()
    assert patched["title"] == "Renamed"
    assert patched["model"] == "claude-test-small"
    assert patched["system_prompt"] == "Keep me"
    assert patched["archived"] is False
    assert patched["updated_at"] >= older["updated_at"]
    stored = await service.db.conversations.find_one({"_id": older["id"]})
    assert (stored["title"], stored["model"], stored["system_prompt"]) == (
        "Renamed",
        "claude-test-small",
        "Keep me",
    )
    assert [c["id"] for c in (await list_page(service))["items"]] == [older["id"], newer["id"]]


async def test_patch_can_clear_the_system_prompt_but_not_null_the_title(service: Service) -> None:
    conversation = await create(service, title="T", system_prompt="Prompt")
    url = f"/api/conversations/{conversation['id']}"
    cleared = await service.http.patch(url, json={"system_prompt": None}, headers=service.headers())
    assert cleared.status == 200
    assert (await cleared.json())["system_prompt"] is None

    for field in ("title", "archived", "model"):
        response = await service.http.patch(url, json={field: None}, headers=service.headers())
        body = await expect_problem(response, 422, "validation_error")
        assert [e["field"] for e in body["errors"]] == [field]
    stored = await service.db.conversations.find_one({"_id": conversation["id"]})
    assert stored["title"] == "T" and stored["archived"] is False


async def test_delete_removes_the_conversation_its_messages_and_its_turns(
    service: Service,
) -> None:
    doomed = await create(service, title="Doomed")
    kept = await create(service, title="Kept")
    await sse_turn(service, "one", conversation_id=doomed["id"])
    await sse_turn(service, "two", conversation_id=doomed["id"])
    await sse_turn(service, "other", conversation_id=kept["id"])
    assert await service.db.messages.count_documents({"conversation_id": doomed["id"]}) == 4

    response = await service.http.delete(
        f"/api/conversations/{doomed['id']}", headers=service.headers()
    )
    assert response.status == 204
    assert await response.read() == b""

    assert await service.db.conversations.find_one({"_id": doomed["id"]}) is None
    assert await service.db.messages.count_documents({"conversation_id": doomed["id"]}) == 0
    assert await service.db.turns.count_documents({"conversation_id": doomed["id"]}) == 0
    assert await service.db.messages.count_documents({"conversation_id": kept["id"]}) == 2
    again = await service.http.get(f"/api/conversations/{doomed['id']}", headers=service.headers())
    await expect_problem(again, 404, "not_found")
    twice = await service.http.delete(
        f"/api/conversations/{doomed['id']}", headers=service.headers()
    )
    await expect_problem(twice, 404, "not_found")


# Ownership: anything not yours is a 404, never a 403


@pytest.mark.parametrize(
    ("user", "tenant"),
    [("mallory", "acme"), ("alice", "other-tenant")],
    ids=["another-user", "same-user-id-in-another-tenant"],
)
async def test_someone_elses_conversation_is_not_found(
    service: Service, user: str, tenant: str
) -> None:
    mine = await create(service, "alice", "acme", title="Private", system_prompt="Secret")
    await sse_turn(service, "hello", tenant="acme", conversation_id=mine["id"])
    before = await service.db.conversations.find_one({"_id": mine["id"]})
    url = f"/api/conversations/{mine['id']}"
    intruder = service.headers(user, tenant)

    hidden = await expect_problem(await service.http.get(url, headers=intruder), 404, "not_found")
    absent_id = "65a000000000000000000000"
    absent = await service.http.get(f"/api/conversations/{absent_id}", headers=intruder)
    # Word for word what a conversation that does not exist gets, but for the id.
    assert await absent.json() == {
        **hidden,
        "detail": hidden["detail"].replace(mine["id"], absent_id),
    }
    await expect_problem(
        await service.http.patch(url, json={"title": "Pwned"}, headers=intruder), 404, "not_found"
    )
    await expect_problem(
        await service.http.get(f"{url}/messages", headers=intruder), 404, "not_found"
    )
    await expect_problem(await service.http.delete(url, headers=intruder), 404, "not_found")
    turn = await service.http.post(
        "/api/turns",
        json={"turn_id": "intruder-turn", "content": "hi", "conversation_id": mine["id"]},
        headers=intruder,
    )
    await expect_problem(turn, 404, "not_found")
    listed = await service.http.get("/api/conversations", headers=intruder)
    assert (await listed.json())["items"] == []

    assert await service.db.conversations.find_one({"_id": mine["id"]}) == before
    assert await service.db.messages.count_documents({"conversation_id": mine["id"]}) == 2
    owner_view = await service.http.get(url, headers=service.headers("alice", "acme"))
    assert (await owner_view.json())["title"] == "Private"


# Listing: newest first, range cursors, the archived filter


async def test_listing_pages_newest_first_without_gaps_or_duplicates(service: Service) -> None:
    created = [await create(service, title=f"c{i}") for i in range(7)]
    stored = await service.db.conversations.find({}).to_list()
    expected = [
        d["_id"] for d in sorted(stored, key=lambda d: (d["updated_at"], d["_id"]), reverse=True)
    ]
    assert set(expected) == {c["id"] for c in created}

    pages = await all_pages(service, limit=3)

    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert [p["next_cursor"] is None for p in pages] == [False, False, True]
    assert [c["id"] for p in pages for c in p["items"]] == expected


async def test_listing_breaks_ties_on_updated_at_by_id_across_pages(service: Service) -> None:
    created = [await create(service, title=f"c{i}") for i in range(7)]
    same_moment = datetime(2025, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    await service.db.conversations.update_many({}, {"$set": {"updated_at": same_moment}})

    pages = await all_pages(service, limit=3)

    assert [c["id"] for p in pages for c in p["items"]] == sorted(
        (c["id"] for c in created), reverse=True
    )
    assert pages[-1]["next_cursor"] is None


async def test_listing_a_limit_that_divides_the_total_ends_with_a_null_cursor(
    service: Service,
) -> None:
    for i in range(4):
        await create(service, title=f"c{i}")
    pages = await all_pages(service, limit=2)
    assert [len(p["items"]) for p in pages] == [2, 2]
    assert pages[-1]["next_cursor"] is None
    empty = await list_page(service, "?archived=true")
    assert empty == {"items": [], "next_cursor": None}


async def test_archived_conversations_are_listed_only_when_asked_for(service: Service) -> None:
    active = [await create(service, title=f"a{i}") for i in range(3)]
    archived = [await create(service, title=f"z{i}") for i in range(2)]
    for conversation in archived:
        response = await service.http.patch(
            f"/api/conversations/{conversation['id']}",
            json={"archived": True},
            headers=service.headers(),
        )
        assert response.status == 200
        assert (await response.json())["archived"] is True
    assert await service.db.conversations.count_documents({"archived": True}) == 2

    default = await list_page(service)
    assert {c["id"] for c in default["items"]} == {c["id"] for c in active}
    assert (await list_page(service, "?archived=false")) == default
    only_archived = await list_page(service, "?archived=true")
    assert [c["id"] for c in only_archived["items"]] == [c["id"] for c in reversed(archived)]
    assert all(c["archived"] for c in only_archived["items"])


async def all_pages(service: Service, *, limit: int) -> list[dict[str, Any]]:
    pages = [await list_page(service, f"?limit={limit}")]
    while pages[-1]["next_cursor"] is not None:
        assert len(pages) < 20, "the cursor never ends"
        pages.append(await list_page(service, f"?limit={limit}&cursor={pages[-1]['next_cursor']}"))
    return pages


# Validation: every error is problem+json with a stable code, never a 500


async def test_malformed_json_is_400(service: Service) -> None:
    for url, send in (
        ("/api/conversations", service.http.post),
        ("/api/conversations/anything", service.http.patch),
    ):
        response = await send(url, data=b'{"title": ', headers=service.headers())
        await expect_problem(response, 400, "malformed_json")
    assert await service.db.conversations.count_documents({}) == 0


async def test_a_json_array_body_is_422(service: Service) -> None:
    response = await service.http.post(
        "/api/conversations", data=b'[{"title": "x"}]', headers=service.headers()
    )
    body = await expect_problem(response, 422, "validation_error")
    assert body["detail"] == "The body must be a JSON object"
    assert [e["field"] for e in body["errors"]] == ["body"]


WRONG_FIELDS = {
    "title-int": ("POST", {"title": 5}, "title"),
    "prompt-list": ("POST", {"system_prompt": ["a"]}, "system_prompt"),
    "unknown-field-create": ("POST", {"title": "ok", "owner": "bob"}, "owner"),
    "100kB-title": ("POST", {"title": "x" * 100_000}, "title"),
    "archived-string": ("PATCH", {"archived": "yes"}, "archived"),
    "title-int-patch": ("PATCH", {"title": 5}, "title"),
    "owner-field-patch": ("PATCH", {"user_id": "bob"}, "user_id"),
    "internal-field-patch": ("PATCH", {"running_turn_id": None}, "running_turn_id"),
}


async def test_wrong_fields_are_422_naming_the_field(
    service: Service, subtests: pytest.Subtests
) -> None:
    target = await create(service, title="Original")
    for case, (method, body, field) in WRONG_FIELDS.items():
        with subtests.test(case):
            url = "/api/conversations" if method == "POST" else f"/api/conversations/{target['id']}"
            response = await service.http.request(method, url, json=body, headers=service.headers())
            problem = await expect_problem(response, 422, "validation_error")
            assert field in [e["field"] for e in problem["errors"]], problem
            assert all(e["message"] for e in problem["errors"])
    assert await service.db.conversations.count_documents({}) == 1
    stored = await service.db.conversations.find_one({"_id": target["id"]})
    assert stored["title"] == "Original" and stored["user_id"] == "alice"
    assert stored["archived"] is False and "running_turn_id" in stored


async def test_a_body_over_the_size_limit_is_413(service: Service) -> None:
    big = orjson.dumps({"title": "x" * 300_000})
    response = await service.http.post("/api/conversations", data=big, headers=service.headers())
    await expect_problem(response, 413, "payload_too_large")

    async def chunks():  # no Content-Length: the limit must hold while reading
        for _ in range(30):
            yield b"x" * 10_000

    chunked = await service.http.post(
        "/api/conversations", data=chunks(), headers=service.headers()
    )
    await expect_problem(chunked, 413, "payload_too_large")
    assert await service.db.conversations.count_documents({}) == 0


async def test_an_unknown_model_is_refused(service: Service) -> None:
    created = await service.http.post(
        "/api/conversations", json={"model": "gpt-4"}, headers=service.headers()
    )
    await expect_problem(created, 422, "model_not_allowed")
    conversation = await create(service)
    patched = await service.http.patch(
        f"/api/conversations/{conversation['id']}",
        json={"model": "claude-imaginary"},
        headers=service.headers(),
    )
    await expect_problem(patched, 422, "model_not_allowed")
    stored = await service.db.conversations.find({}).to_list()
    assert [d["model"] for d in stored] == ["claude-test-large"]


async def test_an_overlong_id_in_the_path_is_404(service: Service) -> None:
    long_id = "a" * 500
    for method in ("GET", "PATCH", "DELETE"):
        response = await service.http.request(
            method, f"/api/conversations/{long_id}", json={}, headers=service.headers()
        )
        await expect_problem(response, 404, "not_found")
    messages = await service.http.get(
        f"/api/conversations/{long_id}/messages", headers=service.headers()
    )
    await expect_problem(messages, 404, "not_found")


async def test_bad_list_parameters_are_422(service: Service, subtests: pytest.Subtests) -> None:
    for query in ("limit=-1", "limit=0", "limit=abc", "limit=1000", "archived=maybe"):
        with subtests.test(query):
            response = await service.http.get(
                f"/api/conversations?{query}", headers=service.headers()
            )
            problem = await expect_problem(response, 422, "validation_error")
            assert problem["errors"][0]["field"] == query.partition("=")[0]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED_CURSORS = [
    "not-a-cursor!",
    _b64(b"hello"),
    _b64(b"[1, 2]"),
    _b64(b'["2025-01-01T00:00:00", "abc"]'),  # no time zone
    _b64(b'["2025-01-01T00:00:00+00:00", 7]'),
    _b64(b'["2025-01-01T00:00:00+00:00", "a", "b"]'),
    _b64(b'{"updated_at": 1, "id": 2}'),
    _b64(b'["0001-01-01T00:00:00+14:00", "abc"]'),  # in UTC, before the year 1
    _b64(b"\xff\xfe"),
    "é",
    "A" * 600,
]


async def test_a_forged_cursor_is_422(service: Service, subtests: pytest.Subtests) -> None:
    await create(service)
    for cursor in FORGED_CURSORS:
        with subtests.test(cursor=cursor[:60]):
            response = await service.http.get(
                "/api/conversations", params={"cursor": cursor}, headers=service.headers()
            )
            problem = await expect_problem(response, 422, "validation_error")
            assert problem["errors"][0]["field"] == "cursor"


async def test_unknown_routes_and_methods_are_problems_too(service: Service) -> None:
    await expect_problem(
        await service.http.get("/api/nothing-here", headers=service.headers()), 404, "not_found"
    )
    await expect_problem(
        await service.http.put("/api/conversations", json={}, headers=service.headers()),
        405,
        "method_not_allowed",
    )
    # No token: the route's existence is not told before the caller is known.
    await expect_problem(await service.http.get("/api/nothing-here"), 401, "unauthorized")
