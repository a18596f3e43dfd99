"""Projects, pins and tags: set on create and PATCH, filtered lists, counts, pushes, bad input."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from server.identity import Identity
from server.storage.shelves import ListFilter
from tests.api_client import expect_problem
from tests.conftest import Service
from tests.query_plans import index_use


async def create(service: Service, user: str = "alice", **body: Any) -> dict[str, Any]:
    response = await service.http.post(
        "/api/conversations", json=body, headers=service.headers(user)
    )
    assert response.status == 201, await response.text()
    conversation: dict[str, Any] = await response.json()
    return conversation


async def patch(service: Service, conversation_id: str, **body: Any) -> dict[str, Any]:
    response = await service.http.patch(
        f"/api/conversations/{conversation_id}", json=body, headers=service.headers()
    )
    assert response.status == 200, await response.text()
    conversation: dict[str, Any] = await response.json()
    return conversation


async def get(service: Service, path: str, user: str = "alice") -> Any:
    response = await service.http.get(path, headers=service.headers(user))
    assert response.status == 200, await response.text()
    return await response.json()


async def ids(service: Service, query: str = "") -> list[str]:
    page = await get(service, f"/api/conversations{query}")
    return [c["id"] for c in page["items"]]


async def test_projects_tags_and_pins_filter_the_list_and_are_counted(service: Service) -> None:
    soup = await create(service, title="Soup", project="  Kitchen ", tags=["Winter", " ideas "])
    bread = await create(service, title="Bread", project="Kitchen", tags=["ideas"])
    trip = await create(service, title="Trip", project="Travel", tags=["Summer  Plans"])
    assert (soup["project"], soup["tags"], soup["pinned"]) == (
        "Kitchen",
        ["ideas", "winter"],
        False,
    )
    assert trip["tags"] == ["summer plans"]

    assert await ids(service) == [trip["id"], bread["id"], soup["id"]]
    assert await ids(service, "?project=Kitchen") == [bread["id"], soup["id"]]
    assert await ids(service, "?tag=IDEAS") == [bread["id"], soup["id"]]
    assert await ids(service, "?project=Travel&tag=ideas") == []

    pinned = await patch(service, soup["id"], pinned=True)
    assert pinned["pinned"] is True and pinned["updated_at"] == soup["updated_at"]  # not activity
    assert await ids(service) == [soup["id"], trip["id"], bread["id"]]
    assert await ids(service, "?pinned=true") == [soup["id"]]
    assert await ids(service, "?pinned=false") == [trip["id"], bread["id"]]

    assert (await get(service, "/api/projects")) == {
        "items": [{"name": "Kitchen", "count": 2}, {"name": "Travel", "count": 1}]
    }
    assert (await get(service, "/api/tags")) == {
        "items": [
            {"name": "ideas", "count": 2},
            {"name": "summer plans", "count": 1},
            {"name": "winter", "count": 1},
        ]
    }
    moved = await patch(service, bread["id"], project="", tags=[])
    assert (moved["project"], moved["tags"]) == (None, [])
    assert await ids(service, "?unfiled=true") == [bread["id"]]
    assert await ids(service, "?unfiled=true&pinned=true") == []
    await patch(service, trip["id"], archived=True)
    assert (await get(service, "/api/projects")) == {"items": [{"name": "Kitchen", "count": 1}]}
    assert (await get(service, "/api/projects?archived=true"))["items"] == [
        {"name": "Travel", "count": 1}
    ]
    assert await ids(service, "?archived=true&tag=summer%20plans") == [trip["id"]]
    assert (await get(service, "/api/tags", user="bob")) == {"items": []}  # only the caller's


async def test_the_cursor_crosses_from_pinned_to_unpinned_without_gaps(service: Service) -> None:
    made = [await create(service, title=f"c{i}") for i in range(7)]
    for conversation in made[1:6:2]:  # three pinned, among the oldest and the newest
        await patch(service, conversation["id"], pinned=True)
    expected = [made[i]["id"] for i in (5, 3, 1, 6, 4, 2, 0)]
    for limit in (1, 2, 3, 7):
        seen, cursor = [], None
        while True:
            query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            page = await get(service, f"/api/conversations{query}")
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert len(seen) <= 7
        assert seen == expected, limit


async def test_conversations_stored_before_pins_read_as_unpinned_and_unfiled(
    service: Service,
) -> None:
    made = [await create(service, title=f"old{i}") for i in range(3)]
    await service.db.conversations.update_many(
        {}, {"$unset": {"pinned": "", "tags": "", "project": ""}}
    )
    page = await get(service, "/api/conversations?limit=2")
    assert [(c["project"], c["pinned"], c["tags"]) for c in page["items"]] == [
        (None, False, [])
    ] * 2
    rest = await get(service, f"/api/conversations?limit=2&cursor={page['next_cursor']}")
    assert [c["id"] for c in page["items"] + rest["items"]] == [c["id"] for c in reversed(made)]
    assert await ids(service, "?pinned=false") == [c["id"] for c in reversed(made)]
    assert await ids(service, "?unfiled=true") == [c["id"] for c in reversed(made)]
    # A cursor issued before pins ([updated_at, id]) resumes among the unpinned.
    newest = page["items"][0]
    old = base64.urlsafe_b64encode(orjson.dumps([newest["updated_at"], newest["id"]])).decode()
    assert await ids(service, f"?cursor={old.rstrip('=')}") == [made[1]["id"], made[0]["id"]]


async def test_a_pin_or_a_tag_set_on_one_device_is_pushed_to_another(service: Service) -> None:
    conversation = await create(service, title="Shared")
    laptop = await service.ws(pushes=True)
    await patch(service, conversation["id"], pinned=True, tags=["Work"], project="Q3")
    frame = (await laptop.until("conversation.changed"))[-1]
    assert frame["conversation"]["id"] == conversation["id"]
    assert {k: frame["conversation"][k] for k in ("pinned", "tags", "project")} == {
        "pinned": True,
        "tags": ["work"],
        "project": "Q3",
    }
    synced = await get(service, "/api/sync")
    assert synced["conversations"][0]["tags"] == ["work"]
    await laptop.close()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tags": ["x" * 41]}, "tags"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"tags": ["   "]}, "tags"),
        ({"project": "p" * 101}, "project"),
        ({"pinned": None}, "pinned"),
        ({"tags": None}, "tags"),
    ],
)
async def test_bad_organising_input_is_422_naming_the_field(
    service: Service, body: dict[str, Any], field: str
) -> None:
    conversation = await create(service)
    response = await service.http.patch(
        f"/api/conversations/{conversation['id']}", json=body, headers=service.headers()
    )
    problem = await expect_problem(response, 422, "validation_error")
    assert problem["errors"][0]["field"] == field
    if body.get("tags") is not None or "project" in body:  # the same on creation
        created = await service.http.post(
            "/api/conversations", json=body, headers=service.headers()
        )
        assert (await expect_problem(created, 422, "validation_error"))["errors"][0][
            "field"
        ] == field


async def test_a_project_and_unfiled_together_are_422(service: Service) -> None:
    response = await service.http.get(
        "/api/conversations?project=Kitchen&unfiled=true", headers=service.headers()
    )
    problem = await expect_problem(response, 422, "validation_error")
    assert problem["errors"][0]["field"] == "unfiled"


async def test_another_users_conversation_cannot_be_filed(service: Service) -> None:
    conversation = await create(service, user="bob", tags=["secret"], project="Bob's")
    response = await service.http.patch(
        f"/api/conversations/{conversation['id']}", json={"pinned": True}, headers=service.headers()
    )
    await expect_problem(response, 404, "not_found")
    assert await ids(service, "?tag=secret") == []
    assert (await get(service, "/api/projects"))["items"] == []


async def test_the_lists_reads_are_served_by_indexes(service: Service) -> None:
    """MongoDB's planner (MONGODB_URI) names the index; the embedded database shows SQLite's
    plan, an expression index searched by the owner's fields (tests/query_plans.py)."""
    alice = Identity("default", "alice")
    conversations = service.db.conversations
    reads = [
        ("owner_list", ListFilter()),
        ("owner_project", ListFilter(project="Kitchen")),
        ("owner_project", ListFilter(unfiled=True)),
        ("owner_tag", ListFilter(tag="ideas")),
    ]
    for index, where in reads:
        for pinned in (True, {"$in": [False, None]}):
            query = {**where.query(alice), "pinned": pinned}
            plan = await conversations.find(query).sort([("updated_at", -1), ("_id", -1)]).explain()
            assert index_use(plan, index) is None, index_use(plan, index)
