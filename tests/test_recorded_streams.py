"""Real recorded provider streams: text relayed and stored, each turn ended cleanly."""

from __future__ import annotations

import pytest

from tests.conftest import Service, text_of
from tests.fake_anthropic import FakeAnthropic, Reply

RECORDINGS: dict[str, tuple[str, str, dict[str, int]]] = {
    "basic": ("Hello there!", "end_turn", {"input_tokens": 11, "output_tokens": 6}),
    "extra_fields": ("Hello!", "end_turn", {"input_tokens": 11, "output_tokens": 3}),
    # Only the text block reaches the user; the tool_use block is not text.
    "tool_use": (
        "I'll check the current weather in Paris for you.",
        "tool_use",
        {"input_tokens": 377, "output_tokens": 65},
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
    assert [f["type"] for f in frames[1:-1]] == ["turn.delta"] * (len(frames) - 2)
    assert text_of(frames) == text
    assert done["stop_reason"] == stop_reason
    assert done["message"]["content"] == text
    assert done["usage"] == usage
    stored = await service.db.messages.find_one({"_id": frames[0]["assistant_message_id"]})
    assert (stored["status"], stored["content"], stored["stop_reason"]) == (
        "complete",
        text,
        stop_reason,
    )
    await ws.close()
