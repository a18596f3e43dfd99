"""Attachments: uploaded once, checked by their bytes, sent to Claude as image and PDF blocks."""

from __future__ import annotations

import base64
import io
import os
from typing import Any

from PIL import Image

from tests.conftest import Service, new_turn_id
from tests.fake_anthropic import CitedText, RecordedRequest, Reply
from tests.files_for_tests import form, jpeg_rotated_with_gps, pdf, png, png_claiming, raw_form
from tests.sse_client import SseReader


async def upload(service: Service, data: bytes, name: str, user: str = "alice") -> Any:
    response = await service.http.post(
        "/api/files", data=form(data, name), headers=service.headers(user)
    )
    return response.status, await response.json()


def last_user_blocks(request: RecordedRequest) -> list[dict[str, Any]]:
    message = request.sent["messages"][-1]
    assert message["role"] == "user"
    content: list[dict[str, Any]] = message["content"]
    return content


def media(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in blocks if b["type"] in ("image", "document")]


async def test_a_png_and_a_pdf_reach_the_model_as_blocks_and_again_as_history(
    service: Service,
) -> None:
    picture, document = png(2000, 1000), pdf(3)
    status, image_file = await upload(service, picture, "wide.png")
    assert status == 201, image_file
    assert (image_file["media_type"], image_file["width"], image_file["height"]) == (
        "image/png",
        1568,
        784,
    )
    status, pdf_file = await upload(service, document, "contract.pdf")
    assert status == 201, pdf_file
    assert (pdf_file["media_type"], pdf_file["pages"], pdf_file["size"]) == (
        "application/pdf",
        3,
        len(document),
    )
    ws = await service.ws()

    frames = await ws.turn("What are these?", attachments=[image_file["id"], pdf_file["id"]])

    assert frames[-1]["type"] == "turn.done", frames[-1]
    image, doc, text = last_user_blocks(service.fake.requests[-1])
    assert image["source"]["media_type"] == "image/png"
    sent = base64.b64decode(image["source"]["data"])
    stored = await service.http.get(f"/api/files/{image_file['id']}", headers=service.headers())
    assert sent == await stored.read()
    with Image.open(io.BytesIO(sent)) as seen:
        assert max(seen.size) <= 1568 and seen.size == (1568, 784)
    assert doc["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(doc["source"]["data"]) == document
    assert doc["citations"] == {"enabled": True}
    assert text == {"type": "text", "text": "What are these?"}
    question = await service.db.messages.find_one({"role": "user"})
    assert question["blocks"] == [
        {"type": "image", "file_id": image_file["id"], "media_type": "image/png",
         "name": "wide.png", "width": 1568, "height": 784},
        {"type": "document", "file_id": pdf_file["id"], "media_type": "application/pdf",
         "name": "contract.pdf", "pages": 3},
    ]  # fmt: skip

    conversation_id = frames[0]["conversation_id"]
    listed = await service.http.get(  # the contract's Message shape, checked by the client
        f"/api/conversations/{conversation_id}/messages", headers=service.headers()
    )
    first = (await listed.json())["items"][0]
    assert (first["role"], first["blocks"]) == ("user", question["blocks"])
    again = await ws.turn("And the second page?", conversation_id=conversation_id)

    assert again[-1]["type"] == "turn.done", again[-1]
    history = service.fake.requests[-1].sent["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert [b["type"] for b in media(history[0]["content"])] == ["image", "document"]
    assert media(history[0]["content"]) == media(last_user_blocks(service.fake.requests[0]))
    assert history[-1]["content"] == "And the second page?"
    await ws.close()


async def test_files_are_owner_scoped_and_described(service: Service) -> None:
    status, described = await upload(service, pdf(1), "mine.pdf")
    assert status == 201
    path = f"/api/files/{described['id']}"

    for user in ("bob",):
        for route in (path, f"{path}/meta"):
            response = await service.http.get(route, headers=service.headers(user))
            assert response.status == 404
            assert (await response.json())["code"] == "not_found"
    other_tenant = await service.http.get(path, headers=service.headers("alice", "acme"))
    assert other_tenant.status == 404
    mine = await service.http.get(path, headers=service.headers())
    assert mine.status == 200
    assert mine.headers["Content-Type"] == "application/pdf"
    assert mine.headers["Content-Disposition"].startswith("attachment")
    assert mine.headers["X-Content-Type-Options"] == "nosniff"
    meta = await service.http.get(f"{path}/meta", headers=service.headers())
    assert await meta.json() == described
    ws = await service.ws("bob")
    refused = await ws.turn("Whose?", attachments=[described["id"]])
    assert (refused[-1]["type"], refused[-1]["code"]) == ("error", "not_found")
    assert await service.db.messages.count_documents({}) == 0
    deleted = await service.http.delete(path, headers=service.headers())
    assert deleted.status == 204
    gone = await service.http.get(f"{path}/meta", headers=service.headers())
    assert gone.status == 404
    await ws.close()


async def test_hostile_and_broken_files_are_refused_precisely(service: Service) -> None:
    cases = [
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "photo.png", 415, "unsupported_file_type"),
        (b"", "empty.png", 422, "invalid_file"),
        (png(64, 64)[:60], "truncated.png", 422, "invalid_file"),
        (png_claiming(100_000, 100_000), "bomb.png", 422, "invalid_file"),
        (pdf(1, password="secret"), "locked.pdf", 422, "invalid_file"),
        (b"%PDF-1.7\n" + b"\x00garbage" * 50, "broken.pdf", 422, "invalid_file"),
        (pdf(101), "long.pdf", 422, "invalid_file"),
    ]
    for data, name, status, code in cases:
        got, problem = await upload(service, data, name)
        assert (got, problem["code"]) == (status, code), (name, problem)
    not_multipart = await service.http.post("/api/files", json={}, headers=service.headers())
    assert (not_multipart.status, (await not_multipart.json())["code"]) == (422, "validation_error")
    assert await service.db["files.files"].count_documents({}) == 0
    assert await service.db["files.chunks"].count_documents({}) == 0


async def test_a_photo_is_turned_upright_stripped_and_safely_named(service: Service) -> None:
    # RFC 5987: percent-encoding carries what a quoted name cannot (a bidi override, \x01).
    name = b"filename*=UTF-8''..%2F..%2Fetc%2F%E2%80%AEev%01il.jpg"
    status, described = await post_raw(service, *raw_form(jpeg_rotated_with_gps(300, 200), name))

    assert status == 201, described
    assert described["name"] == "evil.jpg"
    assert (described["width"], described["height"]) == (200, 300)  # upright
    stored = await service.http.get(f"/api/files/{described['id']}", headers=service.headers())
    with Image.open(io.BytesIO(await stored.read())) as image:
        assert image.size == (200, 300)
        assert not image.getexif()  # no orientation, no GPS: nothing carried over


async def test_a_control_character_in_a_part_header_is_a_bad_request(service: Service) -> None:
    status, problem = await post_raw(service, *raw_form(png(4, 4), b'filename="a\x01.png"'))

    assert (status, problem["code"]) == (400, "bad_request")


async def post_raw(service: Service, body: bytes, boundary: str) -> Any:
    response = await service.http.post(
        "/api/files",
        data=body,
        headers={
            **service.headers(),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    return response.status, await response.json()


async def test_attachment_lists_are_checked_before_anything_is_stored(service: Service) -> None:
    status, described = await upload(service, png(10, 10), "dot.png")
    assert status == 201
    ws = await service.ws()

    twice = await ws.turn("", attachments=[described["id"], described["id"]])
    many = await ws.turn("hi", attachments=[f"f{n}" for n in range(21)])
    alone = await ws.turn("", attachments=[described["id"]])

    assert (twice[-1]["code"], "twice" in twice[-1]["message"]) == ("validation_error", True)
    assert (many[-1]["code"], "at most 20" in many[-1]["message"]) == ("validation_error", True)
    assert alone[-1]["type"] == "turn.done", alone[-1]  # files with no words are a question
    assert [b["type"] for b in last_user_blocks(service.fake.requests[-1])] == ["image"]
    await ws.close()


async def test_the_offline_model_says_what_it_received(service: Service) -> None:
    service.env.pop("ANTHROPIC_API_KEY")
    await service.reconfigure(OFFLINE_WORD_DELAY_SECONDS="0")
    _, image_file = await upload(service, png(800, 600), "shot.png")
    _, pdf_file = await upload(service, pdf(3), "three.pdf")
    ws = await service.ws()

    frames = await ws.turn(
        "Look", attachments=[image_file["id"], pdf_file["id"]], turn_id=new_turn_id()
    )

    assert frames[-1]["type"] == "turn.done", frames[-1]
    assert (
        "I received 1 image, 800\u00d7600 PNG; 1 PDF, 3 pages." in frames[-1]["message"]["content"]
    )
    await ws.close()


async def test_sse_turns_take_attachments_and_refuse_another_users_file(service: Service) -> None:
    _, mine = await upload(service, pdf(2), "two.pdf")
    _, theirs = await upload(service, png(8, 8), "theirs.png", user="bob")

    refused = await service.http.post(
        "/api/turns",
        json={"turn_id": new_turn_id(), "content": "", "attachments": [theirs["id"]]},
        headers=service.headers(),
    )
    assert (refused.status, (await refused.json())["code"]) == (404, "not_found")
    async with service.http.post(
        "/api/turns",
        json={"turn_id": new_turn_id(), "content": "Summarise", "attachments": [mine["id"]]},
        headers=service.headers(),
    ) as response:
        events = await SseReader(response).until()

    assert events[-1].event == "turn.done", events[-1]
    (document,) = media(last_user_blocks(service.fake.requests[-1]))
    assert document["type"] == "document" and document["title"] == "two.pdf"


async def test_citations_into_a_pdf_are_relayed_stored_and_sent_back(service: Service) -> None:
    _, lease = await upload(service, pdf(3), "lease.pdf")
    cited = {
        "type": "page_location",
        "cited_text": "The term is two years.",
        "document_index": 0,
        "document_title": "lease.pdf",
        "start_page_number": 2,
        "end_page_number": 3,
    }
    service.fake.script(Reply.blocks(CitedText([cited], ["Two years."])))
    ws = await service.ws()

    frames = await ws.turn("How long is the lease?", attachments=[lease["id"]])

    (citation,) = [f for f in frames if f["type"] == "turn.citation"]
    assert citation["citation"] == cited
    assert frames[-1]["message"]["blocks"][0]["citations"] == [cited]
    again = await ws.turn("Thanks", conversation_id=frames[0]["conversation_id"])
    assert again[-1]["type"] == "turn.done", again[-1]  # sent back as issued: the fake checks
    answer = service.fake.requests[-1].sent["messages"][1]
    assert answer["content"][0]["citations"] == [cited]
    await ws.close()


async def test_every_accepted_kind_is_judged_by_its_bytes(service: Service) -> None:
    for kind, media_type in (("GIF", "image/gif"), ("WEBP", "image/webp"), ("JPEG", "image/jpeg")):
        out = io.BytesIO()
        Image.new("RGB", (30, 20), (1, 2, 3)).save(out, format=kind)
        status, described = await upload(service, out.getvalue(), "C:\\fakepath\\picture.bin")
        assert status == 201, described
        assert (described["media_type"], described["name"]) == (media_type, "picture.bin")


async def test_an_image_over_its_size_limit_once_processed_is_refused(service: Service) -> None:
    await service.reconfigure(IMAGE_MAX_BYTES="2048")
    noise = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))  # incompressible
    out = io.BytesIO()
    noise.save(out, format="PNG")

    status, problem = await upload(service, out.getvalue(), "noise.png")

    assert (status, problem["code"]) == (422, "invalid_file")
    assert "2,048 bytes" in problem["detail"]


async def test_the_budget_counts_files_and_drops_whole_exchanges(service: Service) -> None:
    await service.reconfigure(CONTEXT_TOKEN_BUDGET="2500")  # a 1568x784 image: ~1,639 tokens
    _, first = await upload(service, png(2000, 1000), "first.png")
    _, second = await upload(service, png(2000, 1000, (0, 90, 0)), "second.png")
    _, too_big = await upload(service, pdf(1), "one-page.pdf")  # 3,000 tokens a page
    ws = await service.ws()
    frames = await ws.turn("One", attachments=[first["id"]])
    conversation_id = frames[0]["conversation_id"]

    await ws.turn("Two", conversation_id=conversation_id, attachments=[second["id"]])
    refused = await ws.turn("Three", conversation_id=conversation_id, attachments=[too_big["id"]])

    messages = service.fake.requests[-1].sent["messages"]
    assert len(messages) == 1  # the first exchange went whole, its image with it
    assert [b["type"] for b in messages[0]["content"]] == ["image", "text"]
    assert (refused[-1]["type"], refused[-1]["code"]) == ("error", "input_too_long")
    await ws.close()


async def test_an_imported_reference_to_another_users_file_never_reaches_the_model(
    service: Service,
) -> None:
    """Files do not travel with an export; a document naming a file id of someone else's
    (made up, or copied from another account) reads as a deleted attachment."""
    status, secret = await upload(service, png(64, 64), "alice-only.png")
    assert status == 201, secret
    ws = await service.ws("alice")
    frames = await ws.turn("Look", attachments=[secret["id"]])
    await ws.close()
    exported = await service.http.get(
        f"/api/conversations/{frames[0]['conversation_id']}/export?format=json",
        headers=service.headers("alice"),
    )
    document = await exported.json()
    imported = await service.http.post(
        "/api/conversations/import", json=document, headers=service.headers("bob")
    )
    assert imported.status == 201, await imported.text()
    conversation_id = (await imported.json())["id"]

    bob = await service.ws("bob")
    again = await bob.turn("And now?", conversation_id=conversation_id)
    await bob.close()

    assert again[-1]["type"] == "turn.done", again[-1]
    first = service.fake.requests[-1].sent["messages"][0]["content"]
    assert media(first) == [], "bob's turn never carries alice's file"
    assert {"type": "text", "text": "[The attachment 'alice-only.png' was deleted.]"} in first
