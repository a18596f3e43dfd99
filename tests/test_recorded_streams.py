"""Real recorded provider streams: text relayed and stored, each turn ended cleanly."""

from __future__ import annotations

import pytest

from tests.conftest import Service, text_of
from tests.fake_anthropic import FakeAnthropic, Reply

RECORDINGS: dict[str, tuple[str, str, dict[str, int]]] = {
    "basic": ("Hello there!", "end_turn", {"input_tokens": 11, "output_tokens": 6}),
    "extra_fields": ("Hello!", "end_turn", {"input_tokens": 11, "output_tokens": 3}),
    # The tool_use block runs `get_weather` (tests.tools_for_tests); the next round
    # (the fake's echo) ends the turn: text of both rounds, usage of both summed.
    "tool_use": (
        "I'll check the current weather in Paris for you.Echo: ",
        "end_turn",
        {"input_tokens": 377, "output_tokens": 68},  # and the echo's input, counted
    ),
    # No text at all, and still a clean `turn.done`.
    "refusal": ("", "refusal", {"input_tokens": 20, "output_tokens": 120}),
}


@pytest.mark.parametrize("name", RECORDINGS)
async def test_recorded_stream_is_relayed_and_stored(
    service: Service, fake: FakeAnthropic, name: str
) -> None:
    text, stop_reason, usage = RECORDINGS[name]
    fake.script(Reply.recorded(name))
    ws = await service.ws()

    frames = await ws.turn("What is the weather in Paris?")

    done = frames[-1]
    assert done["type"] == "turn.done", done
    tools = [f for f in frames if f["type"].startswith("turn.tool_")]
    if name == "tool_use":
        assert [(f["type"], f["name"]) for f in tools] == [
            ("turn.tool_call", "get_weather"),
            ("turn.tool_result", "get_weather"),
        ]
        assert tools[0]["input"] == {"location": "Paris"}
        assert tools[1]["status"] == "ok"
        assert tools[1]["preview"] == "Sunny in Paris, 21 °C"
    deltas = [f for f in frames[1:-1] if f not in tools]
    assert [f["type"] for f in deltas] == ["turn.delta"] * len(deltas)
    assert text_of(frames) == text
    assert done["stop_reason"] == stop_reason
    assert done["message"]["content"] == text
    if name == "tool_use":
        billing = fake.requests[1].billing
        assert billing is not None
        usage = {**usage, "input_tokens": usage["input_tokens"] + billing.input_tokens}
    assert {k: done["usage"][k] for k in usage} == usage
    stored = await service.db.messages.find_one({"_id": frames[0]["assistant_message_id"]})
    assert (stored["status"], stored["content"], stored["stop_reason"]) == (
        "complete",
        text,
        stop_reason,
    )
    await ws.close()
