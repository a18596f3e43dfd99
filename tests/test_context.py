"""What reaches the model: the conversation's history, within the token budget."""

from __future__ import annotations

from tests.conftest import WS, Service, new_turn_id
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.sse_client import SseReader


async def finished_turn(ws: WS, content: str, conversation_id: str | None = None) -> str:
    """Run a turn to `turn.done`; return its conversation's id."""
    fields = {"conversation_id": conversation_id} if conversation_id else {}
    frames = await ws.turn(content, **fields)
    assert frames[-1]["type"] == "turn.done", frames[-1]
    return str(frames[0]["conversation_id"])


async def test_second_turn_sends_the_history(service: Service, fake: FakeAnthropic) -> None:
    fake.script(Reply.text(["Paris ", "is the capital."]), Reply.text(["About 2 million."]))
    ws = await service.ws()
    conversation_id = await finished_turn(ws, "What is the capital of France?")
    await finished_turn(ws, "How many people live there?", conversation_id)

    assert fake.requests[0].sent["messages"] == [
        {"role": "user", "content": "What is the capital of France?"}
    ]
    assert fake.requests[1].sent["messages"] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris is the capital."},
        {"role": "user", "content": "How many people live there?"},
    ]
    assert fake.requests[1].sent["model"] == "claude-test-large"
    assert fake.requests[1].sent["stream"] is True
    await ws.close()


async def test_system_prompt_of_the_conversation_is_sent(
    service: Service, fake: FakeAnthropic
) -> None:
    created = await service.http.post(
        "/api/conversations",
        json={"system_prompt": "Answer in French.", "model": "claude-test-small"},
        headers=service.headers(),
    )
    conversation_id = (await created.json())["id"]
    ws = await service.ws()
    frames = await ws.turn("Hello", conversation_id=conversation_id)
    assert frames[0]["model"] == "claude-test-small"
    body = fake.requests[0].sent
    assert body["system"] == "Answer in French."
    assert body["model"] == "claude-test-small"
    await ws.close()


async def test_budget_drops_the_oldest_messages_first(
    service: Service, fake: FakeAnthropic
) -> None:
    # About 29 tokens a message (100 characters) against a budget of 100: the
    # new message and the last exchange fit, the exchange before does not.
    await service.reconfigure(CONTEXT_TOKEN_BUDGET="100")
    question = [f"{n}" * 100 for n in range(1, 4)]
    answer = [f"{chr(ord('a') + n)}" * 100 for n in range(3)]
    fake.script(*(Reply.text([text]) for text in answer))
    ws = await service.ws()
    conversation_id = await finished_turn(ws, question[0])
    await finished_turn(ws, question[1], conversation_id)
    await finished_turn(ws, question[2], conversation_id)

    assert fake.requests[1].sent["messages"] == [
        {"role": "user", "content": question[0]},
        {"role": "assistant", "content": answer[0]},
        {"role": "user", "content": question[1]},
    ]
    assert fake.requests[2].sent["messages"] == [
        {"role": "user", "content": question[1]},
        {"role": "assistant", "content": answer[1]},
        {"role": "user", "content": question[2]},
    ]
    # Dropped from the model's view only: the history itself is all kept.
    assert await service.db.messages.count_documents({"conversation_id": conversation_id}) == 6
    await ws.close()


async def test_unanswered_questions_are_left_out_and_roles_still_alternate(
    service: Service, fake: FakeAnthropic
) -> None:
    # A question whose answer failed before any text goes with it: a Retry
    # would otherwise show the model the same question twice.
    fake.script(
        Reply.text(["Hi."]), Reply.http_error(500, error_type="api_error"), Reply.text(["Fine."])
    )
    ws = await service.ws()
    conversation_id = await finished_turn(ws, "Hello")
    frames = await ws.turn("First try", conversation_id=conversation_id)
    assert frames[-1]["code"] == "upstream_unavailable"
    await finished_turn(ws, "Second try", conversation_id)

    assert fake.requests[2].sent["messages"] == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "Second try"},
    ]
    await ws.close()


async def test_a_message_alone_over_the_budget_is_refused_and_nothing_stored(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(CONTEXT_TOKEN_BUDGET="200")
    ws = await service.ws()
    conversation_id = await finished_turn(ws, "A short question")
    counts = {
        name: await service.db[name].count_documents({})
        for name in ("messages", "turns", "conversations")
    }
    too_long = "word " * 400  # about 500 tokens

    # In an existing conversation, and as the start of a new one.
    turn_id = new_turn_id()
    await ws.send(
        {
            "type": "turn.start",
            "turn_id": turn_id,
            "conversation_id": conversation_id,
            "content": too_long,
        }
    )
    error = await ws.recv()
    assert (error["type"], error["code"], error["turn_id"]) == ("error", "input_too_long", turn_id)
    await ws.send({"type": "turn.start", "turn_id": new_turn_id(), "content": too_long})
    assert (await ws.recv())["code"] == "input_too_long"
    response = await service.http.post(
        "/api/turns",
        json={"turn_id": new_turn_id(), "content": too_long},
        headers=service.headers(),
    )
    assert response.status == 422
    assert (await response.json())["code"] == "input_too_long"

    for name, count in counts.items():
        assert await service.db[name].count_documents({}) == count, name
    assert len(fake.requests) == 1
    # The refused turn_id was not taken: it can be used for a message that fits.
    frames = await ws.turn("Shorter", turn_id=turn_id, conversation_id=conversation_id)
    assert frames[-1]["type"] == "turn.done"
    await ws.close()


async def test_a_message_over_the_character_limit_is_refused(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(MAX_MESSAGE_CHARS="50")
    async with service.http.post(
        "/api/turns",
        json={"turn_id": new_turn_id(), "content": "x" * 51},
        headers=service.headers(),
    ) as response:
        assert response.status == 422
        assert (await response.json())["code"] == "input_too_long"
    async with service.http.post(
        "/api/turns",
        json={"turn_id": new_turn_id(), "content": "x" * 50},
        headers=service.headers(),
    ) as response:
        assert (await SseReader(response).until())[-1].event == "turn.done"
    assert await service.db.messages.count_documents({}) == 2
