"""The offline model exercises thinking and the tool loop with no API key."""

from __future__ import annotations

from tests.conftest import Service, text_of


async def offline(service: Service) -> None:
    service.env.pop("ANTHROPIC_API_KEY")
    await service.reconfigure(OFFLINE_WORD_DELAY_SECONDS="0")


async def test_offline_calculate_runs_the_tool_and_answers_from_it(service: Service) -> None:
    await offline(service)
    ws = await service.ws()

    frames = await ws.turn("Calculate 2 + 2 * 10 please")

    kinds = [f["type"] for f in frames if f["type"] != "turn.delta"]
    assert kinds == ["turn.started", "turn.tool_call", "turn.tool_result", "turn.done"]
    call = next(f for f in frames if f["type"] == "turn.tool_call")
    assert (call["name"], call["input"]) == ("calculate", {"expression": "2 + 2 * 10"})
    result = next(f for f in frames if f["type"] == "turn.tool_result")
    assert (result["status"], result["preview"]) == ("ok", "2 + 2 * 10 = 22")
    assert "2 + 2 * 10 = 22" in text_of(frames)
    blocks = frames[-1]["message"]["blocks"]
    assert [b["type"] for b in blocks] == ["text", "tool_use", "tool_result", "text"]
    await ws.close()


async def test_offline_search_and_thinking(service: Service) -> None:
    await offline(service)
    ws = await service.ws()
    first = await ws.turn("A recipe for leek soup")
    thinking = {"type": "enabled", "budget_tokens": 1024}

    frames = await ws.turn(
        "Search my conversations for leek",
        conversation_id=first[0]["conversation_id"],
        thinking=thinking,
    )

    assert any(f["type"] == "turn.thinking" for f in frames)
    result = next(f for f in frames if f["type"] == "turn.tool_result")
    assert result["name"] == "search_conversations"
    assert "A recipe for leek soup" in result["preview"]
    assert frames[-1]["message"]["blocks"][0]["type"] == "thinking"
    await ws.close()
