"""The tool loop, as a client sees it and as it is stored: rounds, parallel calls, failures.

Driven over real WebSockets and SSE against the fake upstream, which checks
every request the service sends back as the real API would (each
`tool_use` answered, thinking blocks unchanged, roles alternating).
"""

from __future__ import annotations

import time
from typing import Any

from tests import tools_for_tests
from tests.conftest import Service, new_turn_id, text_of
from tests.conftest import frame_types as types
from tests.fake_anthropic import FakeAnthropic, Reply, Text, Thinking, ToolUse
from tests.sse_client import SseReader

ENDINGS = ("turn.done", "turn.cancelled", "turn.error")


def weather_round(tool_id: str = "toolu_w1") -> Reply:
    return Reply.blocks(
        Text(["Let me ", "check. "]),
        ToolUse(tool_id, "get_weather", {"location": "Paris"}),
        stop_reason="tool_use",
    )


# `weather_round()` as stored: its text, its call, and the call's result.
WEATHER_ROUND_STORED = [
    {"type": "text", "text": "Let me check. "},
    {"type": "tool_use", "id": "toolu_w1", "name": "get_weather", "input": {"location": "Paris"}},
    {
        "type": "tool_result",
        "tool_use_id": "toolu_w1",
        "content": "Sunny in Paris, 21 °C",
        "status": "ok",
    },
]


async def stored_answer(service: Service, turn_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = await service.db.messages.find_one(
        {"turn_id": turn_id, "role": "assistant"}
    )
    return answer


async def test_a_two_round_tool_turn_streams_stores_and_sends_the_results_back(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(weather_round(), Reply.text(["It is ", "sunny."]))
    ws = await service.ws()
    turn_id = new_turn_id()

    frames = await ws.turn("Weather in Paris?", turn_id=turn_id)

    assert types(frames) == [
        "turn.started",
        "turn.delta",
        "turn.tool_call",
        "turn.tool_result",
        "turn.delta",
        "turn.done",
    ]
    call = next(f for f in frames if f["type"] == "turn.tool_call")
    result = next(f for f in frames if f["type"] == "turn.tool_result")
    done = frames[-1]
    assert (call["id"], call["name"], call["input"]) == (
        "toolu_w1",
        "get_weather",
        {"location": "Paris"},
    )
    assert "server" not in call
    assert (result["id"], result["name"], result["status"]) == ("toolu_w1", "get_weather", "ok")
    assert result["preview"] == "Sunny in Paris, 21 °C"
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1
    assert text_of(frames) == "Let me check. It is sunny."
    assert done["stop_reason"] == "end_turn"
    # Summed over both rounds: each round's prompt as the fake counted and billed it.
    billed = [r.billing for r in fake.requests if r.billing is not None]
    assert done["usage"]["input_tokens"] == sum(b.input_tokens for b in billed)
    assert done["usage"]["cache_read_input_tokens"] == sum(
        b.cache_read_input_tokens for b in billed
    )
    assert done["usage"]["output_tokens"] == 7
    blocks = [*WEATHER_ROUND_STORED, {"type": "text", "text": "It is sunny."}]
    assert done["message"]["blocks"] == blocks
    assert done["message"]["content"] == "Let me check. It is sunny."
    stored = await stored_answer(service, turn_id)
    assert (stored["status"], stored["blocks"], stored["content"]) == (
        "complete",
        blocks,
        "Let me check. It is sunny.",
    )
    # One turn, one assistant message; two requests, the second carrying the result.
    first, second = fake.requests
    assert "get_weather" in [t["name"] for t in first.sent["tools"]]
    assert {"search_conversations", "calculate"} <= {t["name"] for t in first.sent["tools"]}
    assert second.rejected is None
    assert second.sent["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": blocks[:2]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_w1",
                    "content": "Sunny in Paris, 21 °C",
                }
            ],
        },
    ]
    await ws.close()


async def test_thinking_is_streamed_stored_and_sent_back_unchanged(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(
        Reply.blocks(
            Thinking("The user wants the weather."),
            ToolUse("toolu_t1", "get_weather", {"location": "Oslo"}),
            stop_reason="tool_use",
        ),
        Reply.blocks(Thinking("Now answer."), Text(["Sunny."])),
        Reply.text(["Still sunny."]),
    )
    ws = await service.ws()
    thinking = {"type": "enabled", "budget_tokens": 1024}

    frames = await ws.turn("Weather in Oslo?", thinking=thinking)

    assert frames[-1]["type"] == "turn.done", frames[-1]
    thought = "".join(f["text"] for f in frames if f["type"] == "turn.thinking")
    assert thought == "The user wants the weather.Now answer."
    assert text_of(frames) == "Sunny."
    kinds = [b["type"] for b in frames[-1]["message"]["blocks"]]
    assert kinds == ["thinking", "tool_use", "tool_result", "thinking", "text"]
    assert all(r.sent["thinking"] == thinking for r in fake.requests)
    assert fake.requests[1].rejected is None  # the thinking block came back byte for byte
    # The next turn replays the whole tool turn in its history, still valid.
    conversation_id = frames[0]["conversation_id"]
    again = await ws.turn("And tomorrow?", conversation_id=conversation_id)
    assert again[-1]["type"] == "turn.done", again[-1]
    assert fake.requests[2].rejected is None
    assert "thinking" not in fake.requests[2].sent  # the setting was for one turn
    history = fake.requests[2].sent["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant", "user"]
    assert history[1]["content"][0]["signature"] == frames[-1]["message"]["blocks"][0]["signature"]
    await ws.close()


async def test_parallel_calls_run_at_once_and_each_gets_its_result(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(
        Reply.blocks(
            ToolUse("toolu_a", "slow_tool", {"seconds": 0.6, "label": "a"}),
            ToolUse("toolu_b", "slow_tool", {"seconds": 0.6, "label": "b"}),
            stop_reason="tool_use",
        ),
        Reply.text(["Both done."]),
    )
    ws = await service.ws()
    await ws.send({"type": "turn.start", "turn_id": new_turn_id(), "content": "Two at once"})
    await ws.until("turn.tool_call")
    await ws.until("turn.tool_call")
    began = time.monotonic()
    results = [(await ws.until("turn.tool_result"))[-1] for _ in range(2)]
    elapsed = time.monotonic() - began

    assert elapsed < 1.1, elapsed  # in sequence they would take 1.2 s
    assert {(r["id"], r["status"]) for r in results} == {("toolu_a", "ok"), ("toolu_b", "ok")}
    frames = await ws.until(*ENDINGS)
    assert frames[-1]["type"] == "turn.done"
    sent = fake.requests[1].sent["messages"][-1]["content"]
    assert [b["tool_use_id"] for b in sent] == ["toolu_a", "toolu_b"]  # in the calls' order
    await ws.close()


async def test_a_failing_tool_bad_input_and_unknown_tool_go_back_as_errors(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(
        Reply.blocks(
            ToolUse("toolu_1", "failing_tool", {"reason": "disk on fire"}),
            ToolUse("toolu_2", "get_weather", {"place": "Paris"}),
            ToolUse("toolu_3", "get_weather", raw="[1, 2"),
            ToolUse("toolu_4", "no_such_tool", {}),
            stop_reason="tool_use",
        ),
        Reply.text(["Sorry, the tools failed."]),
    )
    ws = await service.ws()

    frames = await ws.turn("Break things")

    assert frames[-1]["type"] == "turn.done", frames[-1]
    results = {f["id"]: f for f in frames if f["type"] == "turn.tool_result"}
    assert {i: r["status"] for i, r in results.items()} == dict.fromkeys(
        ["toolu_1", "toolu_2", "toolu_3", "toolu_4"], "error"
    )
    sent = {b["tool_use_id"]: b for b in fake.requests[1].sent["messages"][-1]["content"]}
    assert all(b["is_error"] is True for b in sent.values())
    assert "disk on fire" in sent["toolu_1"]["content"]
    assert "location: Field required" in sent["toolu_2"]["content"]
    assert "place: Extra inputs are not permitted" in sent["toolu_2"]["content"]
    assert "not a JSON object" in sent["toolu_3"]["content"]
    assert "no tool named 'no_such_tool'" in sent["toolu_4"]["content"]
    await ws.close()


async def test_a_tool_that_runs_too_long_times_out(service: Service, fake: FakeAnthropic) -> None:
    await service.reconfigure(TOOL_TIMEOUT_SECONDS="0.2")
    fake.script(
        Reply.blocks(ToolUse("toolu_s", "slow_tool", {"seconds": 5}), stop_reason="tool_use"),
        Reply.text(["It took too long."]),
    )
    ws = await service.ws()

    frames = await ws.turn("Be slow")

    result = next(f for f in frames if f["type"] == "turn.tool_result")
    assert (result["status"], result["preview"]) == (
        "timeout",
        "The tool slow_tool timed out after 0.2 s.",
    )
    assert frames[-1]["type"] == "turn.done"
    await ws.close()


async def test_cancel_during_a_tool_stops_it_and_stores_the_rounds_so_far(
    service: Service, fake: FakeAnthropic
) -> None:
    label = new_turn_id()
    fake.script(
        Reply.blocks(
            Text(["Waiting. "]),
            ToolUse("toolu_c", "slow_tool", {"seconds": 30, "label": label}),
            stop_reason="tool_use",
        )
    )
    ws = await service.ws()
    turn_id = new_turn_id()
    await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Wait for it"})
    await ws.until("turn.tool_call")
    began = time.monotonic()

    await ws.send({"type": "turn.cancel", "turn_id": turn_id})
    frames = await ws.until(*ENDINGS)

    assert time.monotonic() - began < 2
    assert types(frames) == ["turn.tool_result", "turn.cancelled"]
    assert frames[0]["status"] == "cancelled"
    assert tools_for_tests.CANCELLED.count(label) == 1  # the tool's task was cancelled
    message = frames[-1]["message"]
    assert [b["type"] for b in message["blocks"]] == ["text", "tool_use", "tool_result"]
    assert message["blocks"][-1]["status"] == "cancelled"
    stored = await stored_answer(service, turn_id)
    assert (stored["status"], stored["blocks"]) == ("cancelled", message["blocks"])
    assert len(fake.requests) == 1  # the model was not asked again
    # The conversation goes on: its history is still one the API accepts.
    again = await ws.turn("Never mind", conversation_id=message["conversation_id"])
    assert again[-1]["type"] == "turn.done", again[-1]
    assert fake.requests[1].rejected is None
    await ws.close()


async def test_cancel_during_thinking_closes_the_upstream(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.blocks(Thinking("Hmm. " * 40, delay=0.2, pieces=40), Text(["Answer."])))
    ws = await service.ws()
    turn_id = new_turn_id()
    thinking = {"type": "enabled", "budget_tokens": 2048}
    await ws.send(
        {"type": "turn.start", "turn_id": turn_id, "content": "Ponder", "thinking": thinking}
    )
    await ws.until("turn.thinking")

    await ws.send({"type": "turn.cancel", "turn_id": turn_id})
    frames = await ws.until(*ENDINGS)

    assert frames[-1]["type"] == "turn.cancelled"
    assert await fake.requests[0].wait_finished()
    assert fake.requests[0].closed_by_client.is_set()
    # Thinking cut before its signature cannot be sent back: it is not kept as a block.
    assert frames[-1]["message"]["blocks"] == []
    assert (await stored_answer(service, turn_id))["status"] == "cancelled"
    await ws.close()


async def test_resume_mid_tool_after_a_disconnect_gets_the_rest(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(
        Reply.blocks(
            Text(["Checking. "]),
            ToolUse("toolu_r", "slow_tool", {"seconds": 0.8}),
            stop_reason="tool_use",
        ),
        Reply.text(["Done."]),
    )
    ws = await service.ws()
    turn_id = new_turn_id()
    await ws.send({"type": "turn.start", "turn_id": turn_id, "content": "Take your time"})
    call = (await ws.until("turn.tool_call"))[-1]
    await ws.close()

    again = await service.ws()
    # A snapshot (a seq never reached) carries the blocks so far.
    await again.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": 999})
    snapshot = await again.recv()
    assert snapshot["type"] == "turn.snapshot"
    assert [b["type"] for b in snapshot["message"]["blocks"]] == ["text", "tool_use"]
    await again.until(*ENDINGS)
    await again.send({"type": "turn.resume", "turn_id": turn_id, "after_seq": call["seq"]})
    rest = await again.until(*ENDINGS)

    assert types(rest) == ["turn.tool_result", "turn.delta", "turn.done"]
    assert rest[-1]["message"]["content"] == "Checking. Done."
    await again.close()


async def test_a_finished_tool_turn_is_replayed_by_its_turn_id_without_the_model(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(weather_round(), Reply.text(["Sunny."]))
    ws = await service.ws()
    turn_id = new_turn_id()
    first = await ws.turn("Weather?", turn_id=turn_id)
    await service.restart()  # nothing held in memory: rebuilt from storage
    ws = await service.ws()

    replayed = await ws.turn("Weather?", turn_id=turn_id)

    assert len(fake.requests) == 2
    assert types(replayed) == [
        "turn.started",
        "turn.delta",
        "turn.tool_call",
        "turn.tool_result",
        "turn.delta",
        "turn.done",
    ]
    assert text_of(replayed) == text_of(first)
    live = [f for f in first if f["type"].startswith("turn.tool_")]
    again = [f for f in replayed if f["type"].startswith("turn.tool_")]
    assert [{**f, "seq": 0} for f in again] == [{**f, "seq": 0} for f in live]
    assert replayed[-1]["message"] == first[-1]["message"]
    await ws.close()


async def test_a_tool_turn_over_sse(service: Service, fake: FakeAnthropic) -> None:
    fake.script(weather_round(), Reply.text(["Sunny."]))
    async with service.http.post(
        "/api/turns",
        json={"turn_id": new_turn_id(), "content": "Weather?"},
        headers=service.headers(),
    ) as response:
        events = await SseReader(response).until()

    frames = [e.data for e in events]
    assert [e.event for e in events] == [f["type"] for f in frames]
    assert types(frames) == [
        "turn.started",
        "turn.delta",
        "turn.tool_call",
        "turn.tool_result",
        "turn.delta",
        "turn.done",
    ]
    assert [e.id for e in events] == [str(f["seq"]) for f in frames]
    assert next(f for f in frames if f["type"] == "turn.tool_result")["status"] == "ok"


async def test_stop_reasons_other_than_tools_end_the_turn_as_the_model_said(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(
        Reply.text(["Cut"], stop_reason="max_tokens"),
        Reply.text(["Too long"], stop_reason="model_context_window_exceeded"),
        Reply.text(["Stop"], stop_reason="stop_sequence"),
    )
    ws = await service.ws()
    for expected in ("max_tokens", "model_context_window_exceeded", "stop_sequence"):
        done = (await ws.turn("Go"))[-1]
        assert (done["stop_reason"], done["message"]["stop_reason"]) == (expected, expected)
    assert len(fake.requests) == 3  # never retried
    await ws.close()


async def test_pause_turn_is_continued_with_the_assistant_content(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.text(["Working "], stop_reason="pause_turn"), Reply.text(["done."]))
    ws = await service.ws()

    frames = await ws.turn("Long job")

    assert frames[-1]["stop_reason"] == "end_turn"
    assert text_of(frames) == "Working done."
    assert fake.requests[1].sent["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Working "}],
    }
    await ws.close()


async def test_the_round_limit_answers_the_last_calls_and_ends_the_turn(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(MAX_TOOL_ROUNDS="1")
    fake.script(weather_round("toolu_1"), weather_round("toolu_2"), Reply.text(["Next turn."]))
    ws = await service.ws()

    frames = await ws.turn("Loop")

    assert len(fake.requests) == 2
    results = [f for f in frames if f["type"] == "turn.tool_result"]
    assert [(r["id"], r["status"]) for r in results] == [("toolu_1", "ok"), ("toolu_2", "error")]
    assert frames[-1]["stop_reason"] == "tool_use"
    again = await ws.turn("Go on", conversation_id=frames[0]["conversation_id"])
    assert again[-1]["type"] == "turn.done"
    assert fake.requests[2].rejected is None
    await ws.close()


async def test_tool_output_is_capped_before_the_model_and_the_store(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(TOOL_OUTPUT_MAX_CHARS="100")
    fake.script(
        Reply.blocks(ToolUse("toolu_big", "big_output", {"size": 5000}), stop_reason="tool_use"),
        Reply.text(["Long."]),
    )
    ws = await service.ws()

    frames = await ws.turn("Big")

    sent = fake.requests[1].sent["messages"][-1]["content"][0]["content"]
    assert sent == "x" * 100 + "\n[output cut: 4900 more characters]"
    assert frames[-1]["message"]["blocks"][1]["content"] == sent
    await ws.close()


async def test_a_conversations_thinking_setting_applies_to_its_turns(
    service: Service, fake: FakeAnthropic
) -> None:
    headers = service.headers()
    too_big = {"thinking": {"type": "enabled", "budget_tokens": 4096}}  # MAX_OUTPUT_TOKENS 4096
    async with service.http.post("/api/conversations", json=too_big, headers=headers) as response:
        assert response.status == 422
        assert (await response.json())["errors"][0]["field"] == "thinking.budget_tokens"
    enabled = {"thinking": {"type": "enabled", "budget_tokens": 2000}}
    async with service.http.post("/api/conversations", json=enabled, headers=headers) as response:
        conversation = await response.json()
    assert conversation["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    fake.script(Reply.blocks(Thinking("Hm."), Text(["Yes."])), Reply.text(["Plain."]))
    ws = await service.ws()

    await ws.turn("Think", conversation_id=conversation["id"])
    off = {"type": "disabled"}
    await ws.turn("Don't", conversation_id=conversation["id"], thinking=off)

    assert fake.requests[0].sent["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert "thinking" not in fake.requests[1].sent
    assert fake.requests[1].rejected is None
    async with service.http.patch(
        f"/api/conversations/{conversation['id']}", json={"thinking": None}, headers=headers
    ) as response:
        assert (await response.json())["thinking"] is None
    await ws.close()
