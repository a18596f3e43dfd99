"""Share links over HTTP: a snapshot behind an unguessable token, readable without signing
in, inert whatever the conversation holds, gone everywhere the moment it is revoked."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Service

HOSTILE_TITLE = '<script>alert("title")</script><img src=x onerror=alert(1)>'
HOSTILE_TEXT = "<script>alert('text')</script> **bold** [x](javascript:alert(2))"


async def conversation_with_a_turn(service: Service, text: str = "Hello there") -> str:
    ws = await service.ws()
    try:
        frames = await ws.turn(text)
    finally:
        await ws.close()
    assert frames[-1]["type"] == "turn.done", frames[-1]
    return str(frames[0]["conversation_id"])


async def share(service: Service, conversation_id: str, user: str = "alice") -> dict[str, Any]:
    url = f"/api/conversations/{conversation_id}/shares"
    async with service.http.post(url, headers=service.headers(user)) as r:
        assert r.status == 201, await r.text()
        return dict(await r.json())


def token_of(created: dict[str, Any]) -> str:
    found = re.fullmatch(r"http://[^/]+/s/([A-Za-z0-9_-]+)", created["url"])
    assert found is not None, created["url"]
    return found.group(1)


async def status_of(service: Service, method: str, path: str, **kwargs: Any) -> int:
    async with service.http.request(method, path, **kwargs) as r:
        return r.status


async def test_a_share_opens_without_sign_in_and_is_gone_once_revoked(service: Service) -> None:
    conversation_id = await conversation_with_a_turn(service)
    created = await share(service, conversation_id)
    token = token_of(created)
    assert len(token) >= 43  # 32 random bytes

    async with service.http.get(f"/api/shares/{token}") as r:  # no Authorization at all
        assert r.status == 200
        assert r.headers["X-Robots-Tag"].startswith("noindex")
        snapshot = await r.json()
    assert [m["role"] for m in snapshot["messages"]] == ["user", "assistant"]
    assert snapshot["messages"][0]["content"] == "Hello there"
    async with service.http.get(f"/s/{token}") as r:
        assert r.status == 200 and r.content_type == "text/html"
        page = await r.text()
        policy = r.headers["Content-Security-Policy"]
        assert r.headers["X-Robots-Tag"].startswith("noindex")
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert '<meta name="robots" content="noindex' in page and "Hello there" in page

    stored = await service.db["shares"].find_one({"_id": created["id"]})
    assert token not in str(stored)  # only its hash is kept

    # A later turn is not in the snapshot: it is the branch as it was.
    ws = await service.ws()
    await ws.turn("Something later", conversation_id=conversation_id)
    await ws.close()
    async with service.http.get(f"/api/shares/{token}") as r:
        assert len((await r.json())["messages"]) == 2

    path = f"/api/conversations/{conversation_id}/shares"
    async with service.http.get(path, headers=service.headers()) as r:
        assert [s["id"] for s in (await r.json())["items"]] == [created["id"]]
    assert await status_of(service, "GET", path, headers=service.headers("bob")) == 404
    bob_revokes = await status_of(
        service, "DELETE", f"/api/shares/{created['id']}", headers=service.headers("bob")
    )
    assert bob_revokes == 404
    assert await status_of(service, "DELETE", f"/api/shares/{created['id']}") == 401

    revoke = f"/api/shares/{created['id']}"
    assert await status_of(service, "DELETE", revoke, headers=service.headers()) == 204
    assert await status_of(service, "GET", f"/s/{token}") == 404
    assert await status_of(service, "GET", f"/api/shares/{token}") == 404
    assert await status_of(service, "GET", f"/s/{'A' * 43}") == 404  # made up
    async with service.http.get(path, headers=service.headers()) as r:
        assert (await r.json())["items"] == []


async def test_html_and_script_in_a_shared_conversation_are_inert(service: Service) -> None:
    conversation_id = await conversation_with_a_turn(service, HOSTILE_TEXT)
    async with service.http.patch(
        f"/api/conversations/{conversation_id}",
        json={"title": HOSTILE_TITLE},
        headers=service.headers(),
    ) as r:
        assert r.status == 200
    token = token_of(await share(service, conversation_id))
    async with service.http.get(f"/s/{token}") as r:
        page = await r.text()
    assert "<script" not in page and "<img" not in page and 'href="javascript' not in page
    assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in page  # shown, not run
    assert "&lt;script&gt;alert(&#39;text&#39;)&lt;/script&gt;" in page
    assert "<strong>bold</strong>" in page  # the answer (an echo) is rendered Markdown


async def test_a_revoke_is_a_404_at_once_in_another_process(service: Service) -> None:
    """Two apps on one database, as two workers: the second reads the database each time."""
    other = await Service(service.env, service.fake).start()
    try:
        created = await share(service, await conversation_with_a_turn(service))
        token = token_of(created)
        assert await status_of(other, "GET", f"/s/{token}") == 200
        revoke = f"/api/shares/{created['id']}"
        assert await status_of(service, "DELETE", revoke, headers=service.headers()) == 204
        assert await status_of(other, "GET", f"/s/{token}") == 404
        assert await status_of(other, "GET", f"/api/shares/{token}") == 404
    finally:
        await other.close()


async def test_a_deleted_conversation_takes_its_links_with_it(service: Service) -> None:
    conversation_id = await conversation_with_a_turn(service)
    token = token_of(await share(service, conversation_id))
    path = f"/api/conversations/{conversation_id}"
    assert await status_of(service, "DELETE", path, headers=service.headers()) == 204
    assert await status_of(service, "GET", f"/api/shares/{token}") == 404


async def test_sharing_off_answers_404_everywhere(service: Service) -> None:
    conversation_id = await conversation_with_a_turn(service)
    token = token_of(await share(service, conversation_id))
    await service.reconfigure(SHARING="off")
    path = f"/api/conversations/{conversation_id}/shares"
    assert await status_of(service, "POST", path, headers=service.headers()) == 404
    assert await status_of(service, "GET", path, headers=service.headers()) == 404
    assert await status_of(service, "GET", f"/s/{token}") == 404
    assert await status_of(service, "GET", f"/api/shares/{token}") == 404
    # Only the share reads are public: the rest of /api still needs a token.
    assert await status_of(service, "GET", f"{path[:-7]}/export") == 401
