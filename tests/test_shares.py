"""Share links over HTTP: a snapshot behind an unguessable token, readable without signing
in, inert whatever the conversation holds, gone everywhere the moment it is revoked."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Service
from tests.files_for_tests import form, pdf, png

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


async def upload(service: Service, data: bytes, name: str) -> str:
    async with service.http.post(
        "/api/files", data=form(data, name), headers=service.headers()
    ) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["id"])


async def test_a_shared_attachment_opens_through_its_link_only(service: Service) -> None:
    picture, document = png(40, 30), pdf(2)
    image_id = await upload(service, picture, "broken [part].png")
    pdf_id = await upload(service, document, "contract.pdf")
    other_id = await upload(service, png(10, 10), "not-shared.png")
    ws = await service.ws()
    frames = await ws.turn("What is this?", attachments=[image_id, pdf_id, other_id])
    await ws.close()
    assert frames[-1]["type"] == "turn.done", frames[-1]
    conversation_id = str(frames[0]["conversation_id"])

    # The Markdown export names each file, linking the file API (for its owner).
    export = f"/api/conversations/{conversation_id}/export?format=markdown"
    async with service.http.get(export, headers=service.headers()) as r:
        text = await r.text()
    origin = str(service.http.make_url("/")).rstrip("/")
    image_url = f"({origin}/api/files/{image_id})"
    named = "broken \\[part\\].png (image/png, 40\N{MULTIPLICATION SIGN}30)"
    assert f"📎 [{named}]{image_url}" in text
    assert f"📎 [contract.pdf (application/pdf, 2 pages)]({origin}/api/files/{pdf_id})" in text
    assert "What is this?" in text  # the question's words, below its files

    created = await share(service, conversation_id)
    token = token_of(created)
    async with service.http.get(f"/api/shares/{token}") as r:
        question = (await r.json())["messages"][0]
    urls = [b["url"] for b in question["blocks"]]
    assert urls == [f"/s/{token}/files/{i}" for i in (image_id, pdf_id, other_id)]
    async with service.http.get(f"/s/{token}") as r:
        page = await r.text()
    assert f'<img src="/s/{token}/files/{image_id}" alt="broken [part].png"' in page
    assert f'href="/s/{token}/files/{pdf_id}"' in page and "What is this?" in page

    async with service.http.get(f"/s/{token}/files/{image_id}") as r:  # no Authorization
        assert r.status == 200 and r.headers["Content-Type"] == "image/png"
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        served = await r.read()
    async with service.http.get(f"/api/files/{image_id}", headers=service.headers()) as r:
        assert served == await r.read()

    # Only through the link, only what the snapshot names.
    extra_id = await upload(service, png(12, 12), "later.png")
    assert await status_of(service, "GET", f"/s/{token}/files/{extra_id}") == 404
    assert await status_of(service, "GET", f"/s/{'A' * 43}/files/{image_id}") == 404
    assert await status_of(service, "GET", f"/api/files/{image_id}") == 401
    # A file its owner deletes is gone from the share too; the rest stays.
    deleted = await status_of(
        service, "DELETE", f"/api/files/{other_id}", headers=service.headers()
    )
    assert deleted == 204
    assert await status_of(service, "GET", f"/s/{token}/files/{other_id}") == 404
    assert await status_of(service, "GET", f"/s/{token}/files/{pdf_id}") == 200
    # Revoked: the files go with the link.
    revoke = f"/api/shares/{created['id']}"
    assert await status_of(service, "DELETE", revoke, headers=service.headers()) == 204
    assert await status_of(service, "GET", f"/s/{token}/files/{image_id}") == 404


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
