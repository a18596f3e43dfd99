"""True token counts (issue 22): each question and answer counted once by the provider's
counting endpoint after its turn, stored on the message, and used to trim the history.

The real SDK against the fake provider, whose `/v1/messages/count_tokens` answers in the
API's wire format with the same count it bills (`fake_cache.prompt_tokens`)."""

from __future__ import annotations

from typing import Any

from server.turns.context import messages_of
from server.turns.counting import PROBE
from tests.conftest import Service, eventually
from tests.fake_anthropic import FakeAnthropic, Reply, Text, ToolUse
from tests.fake_cache import prompt_tokens

MODEL = "claude-test-large"


def counted(messages: list[dict[str, Any]], tools: list[Any] | None = None) -> int:
    return prompt_tokens({"model": MODEL, "messages": messages, "tools": tools or []})


async def stored(service: Service, conversation_id: str) -> list[dict[str, Any]]:
    found = service.db.messages.find({"conversation_id": conversation_id}, sort=[("seq", 1)])
    return await found.to_list()


async def test_each_message_is_counted_once_and_trims_the_history(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(TOKEN_COUNTS="api")
    fake.script(
        Reply.blocks(
            Text(["Let me check. "]),
            ToolUse("toolu_c1", "get_weather", {"location": "Paris"}),
            stop_reason="tool_use",
        ),
        Reply.text(["Sunny, 21 degrees."]),
    )
    ws = await service.ws()
    frames = await ws.turn("Weather in Paris?")
    assert frames[-1]["type"] == "turn.done", frames[-1]
    conversation_id = str(frames[0]["conversation_id"])

    async def both_counted() -> list[dict[str, Any]]:
        messages = await stored(service, conversation_id)
        return messages if all("tokens" in m for m in messages) else []

    question, answer = await eventually(both_counted)
    assert question["tokens"] == counted(messages_of(question))
    # The answer used a tool: counted with the tool definitions, after the probe question,
    # less the probe's own count (asked once).
    tools = next(body["tools"] for body in fake.count_requests if body.get("tools"))
    assert {t["name"] for t in tools} >= {"get_weather"}
    expected = counted([PROBE, *messages_of(answer)], tools) - counted([PROBE], tools)
    assert answer["tokens"] == expected
    asked = len(fake.count_requests)
    assert asked == 3  # the question, the probe, the answer

    # The counts, not the estimate, decide what fits: an answer counted at the whole budget
    # (CONTEXT_TOKEN_BUDGET, 100,000) is left out of the next request with its question,
    # although its text is short.
    await service.db.messages.update_one({"_id": answer["_id"]}, {"$set": {"tokens": 100_000}})
    fake.script(Reply.text(["Still sunny."]))
    later = await ws.turn("And tomorrow?", conversation_id=conversation_id)
    assert later[-1]["type"] == "turn.done", later[-1]
    assert fake.requests[-1].sent["messages"] == [{"role": "user", "content": "And tomorrow?"}]

    # Only what is new is counted: this turn's question and answer, and the probe for an
    # answer without tools (the first one's was counted with the tool definitions).
    async def all_counted() -> bool:
        return all("tokens" in m for m in await stored(service, conversation_id))

    assert await eventually(all_counted)
    assert len(fake.count_requests) == asked + 3
    await ws.close()


async def test_with_estimates_nothing_is_counted(service: Service, fake: FakeAnthropic) -> None:
    """`TOKEN_COUNTS=estimate` (as the offline model always is): no count is asked."""
    ws = await service.ws()
    frames = await ws.turn("Hello")
    assert frames[-1]["type"] == "turn.done"
    await ws.close()
    messages = await stored(service, str(frames[0]["conversation_id"]))
    assert fake.count_requests == [] and not any("tokens" in m for m in messages)
