"""A new conversation is titled by the model after its first turn, off the turn's path."""

from __future__ import annotations

from tests.conftest import Service, eventually
from tests.fake_anthropic import FakeAnthropic, Reply


async def test_first_turn_titles_the_conversation(service: Service, fake: FakeAnthropic) -> None:
    fake.script(Reply.text(["Bonjour ", "is hello."]))
    ws = await service.ws()

    frames = await ws.turn("How do I say hello in French?")

    assert frames[-1]["type"] == "turn.done"
    conversation_id = frames[0]["conversation_id"]

    async def title() -> str:
        response = await service.http.get(
            f"/api/conversations/{conversation_id}", headers=service.headers()
        )
        return str((await response.json())["title"])

    assert await eventually(title) == "Fake title"
    # The title is asked for once the answer is stored, from the whole exchange,
    # and with the title model; the chat requests are untouched by it.
    assert len(fake.title_requests) == 1
    body = fake.title_requests[0].body
    assert body["model"] == "claude-test-small"
    exchange = body["messages"][0]["content"]
    assert "How do I say hello in French?" in exchange
    assert "Bonjour is hello." in exchange
    assert len(fake.requests) == 1

    # Later turns, and conversations a user named, are not retitled.
    await ws.turn("And goodbye?", conversation_id=conversation_id)
    created = await service.http.post(
        "/api/conversations", json={"title": "Mine"}, headers=service.headers()
    )
    named = (await created.json())["id"]
    await ws.turn("Hi", conversation_id=named)
    assert len(fake.title_requests) == 1
    assert await title() == "Fake title"
    await ws.close()


async def test_a_slow_title_does_not_delay_the_turn(service: Service, fake: FakeAnthropic) -> None:
    fake.title_reply = Reply.text(["Slow title"], first_delay=30)
    ws = await service.ws()

    frames = await ws.turn("Question")

    # The terminal frame came while the title request was still unanswered.
    assert frames[-1]["type"] == "turn.done"
    assert all(not r.finished.is_set() for r in fake.title_requests)
    stored = await service.db.messages.find_one({"_id": frames[0]["assistant_message_id"]})
    assert stored["status"] == "complete"
    # The next turn on the conversation does not wait for the title either.
    again = await ws.turn("Another", conversation_id=frames[0]["conversation_id"])
    assert again[-1]["type"] == "turn.done"
    await ws.close()


async def test_shutdown_drops_a_title_in_flight(service: Service, fake: FakeAnthropic) -> None:
    await service.reconfigure(UPSTREAM_TIMEOUT_SECONDS="60")
    fake.title_reply = Reply.text(["Slow title"], first_delay=30)
    ws = await service.ws()
    assert (await ws.turn("Question"))[-1]["type"] == "turn.done"

    async def asked() -> int:
        return len(fake.title_requests)

    assert await eventually(asked)
    await ws.close()
    await service.stop()

    # Closed by the service, not answered 30 s later: shutdown did not wait for it.
    assert await fake.title_requests[0].wait_finished(within=5)
    assert fake.title_requests[0].closed_by_client.is_set()


async def test_a_failed_title_leaves_the_conversation_untitled(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.title_reply = Reply.http_error(529, error_type="overloaded_error")
    ws = await service.ws()
    frames = await ws.turn("Question")
    assert frames[-1]["type"] == "turn.done"

    async def asked() -> bool:
        return bool(fake.title_requests) and fake.title_requests[0].finished.is_set()

    assert await eventually(asked)
    response = await service.http.get(
        f"/api/conversations/{frames[0]['conversation_id']}", headers=service.headers()
    )
    assert (await response.json())["title"] == ""
    await ws.close()
