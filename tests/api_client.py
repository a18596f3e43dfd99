"""What a REST client checks of the API: problem+json errors, and a whole SSE turn."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import Service, new_turn_id
from tests.sse_client import SseReader

PROBLEM_FIELDS = frozenset({"type", "title", "status", "detail", "code"})


async def expect_problem(
    response: aiohttp.ClientResponse, status: int, code: str
) -> dict[str, Any]:
    """The problem+json body of an error response, after checking its status and shape."""
    assert response.status == status, (response.status, await response.text())
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json(content_type=None)
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status and body["code"] == code, body
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def sse_turn(
    service: Service, content: str, *, user: str = "alice", tenant: str | None = None, **fields: Any
) -> list[dict[str, Any]]:
    """Run a turn over `POST /api/turns` to its end; the events' JSON, as a client reads them."""
    body = {"turn_id": fields.pop("turn_id", new_turn_id()), "content": content, **fields}
    async with service.http.post(
        "/api/turns", json=body, headers=service.headers(user, tenant)
    ) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        return [event.data for event in await SseReader(response).until()]
