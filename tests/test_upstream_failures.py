"""Every way the provider can fail maps to a code, `retryable`, and a kept partial answer."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tests.conftest import Service, text_of
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.sse_client import SseReader
from tests.test_tool_loop import WEATHER_ROUND_STORED, weather_round

SECRET = "provider-internal-detail-7f3a"  # must never reach a client


@dataclass(frozen=True)
class Failure:
    reply: Reply
    code: str
    retryable: bool
    partial: str = ""


FAILURES = {
    "429": Failure(
        Reply.http_error(
            429, error_type="rate_limit_error", message=SECRET, headers={"retry-after": "7"}
        ),
        "rate_limited",
        True,
    ),
    "529": Failure(
        Reply.http_error(529, error_type="overloaded_error", message=SECRET),
        "upstream_unavailable",
        True,
    ),
    "500": Failure(
        Reply.http_error(500, error_type="api_error", message=SECRET), "upstream_unavailable", True
    ),
    "401": Failure(
        Reply.http_error(401, error_type="authentication_error", message=SECRET),
        "upstream_error",
        False,
    ),
    "400": Failure(
        Reply.http_error(400, error_type="invalid_request_error", message=SECRET),
        "upstream_error",
        False,
    ),
    "drop": Failure(
        Reply.drop_after(["Half ", "an ", "answer"], delay=0.01),
        "upstream_unavailable",
        True,
        "Half an answer",
    ),
    "error_event": Failure(
        Reply.error_event(
            ["Half ", "an ", "answer"], error_type="overloaded_error", message=SECRET
        ),
        "upstream_unavailable",
        True,
        "Half an answer",
    ),
}


@pytest.mark.parametrize("name", FAILURES)
async def test_upstream_failure_over_websocket(
    service: Service, fake: FakeAnthropic, name: str
) -> None:
    failure = FAILURES[name]
    fake.script(failure.reply)
    ws = await service.ws()

    frames = await ws.turn("Hello")

    error = frames[-1]
    assert [f["type"] for f in frames if f["type"] != "turn.delta"] == [
        "turn.started",
        "turn.error",
    ]
    assert error["code"] == failure.code
    assert error["retryable"] is failure.retryable
    assert error["message"]
    assert SECRET not in json.dumps(frames)
    if failure.code == "rate_limited":
        assert error["retry_after"] == 7
    assert text_of(frames) == failure.partial
    if failure.partial:
        assert error["partial"]["content"] == failure.partial
        assert error["partial"]["status"] == "error"
    else:
        assert error["partial"] is None

    stored = await service.db.messages.find_one({"_id": frames[0]["assistant_message_id"]})
    assert (stored["status"], stored["content"]) == ("error", failure.partial)
    assert stored["error"]["code"] == failure.code
    turn = await service.db.turns.find_one({"turn_id": frames[0]["turn_id"]})
    assert turn["status"] == "error"
    conversation = await service.db.conversations.find_one({"_id": frames[0]["conversation_id"]})
    assert conversation["running_turn_id"] is None
    # The conversation goes on: the next turn is answered.
    again = await ws.turn("Hello again", conversation_id=frames[0]["conversation_id"])
    assert again[-1]["type"] == "turn.done"
    await ws.close()


async def test_stall_longer_than_the_upstream_timeout(
    service: Service, fake: FakeAnthropic
) -> None:
    await service.reconfigure(UPSTREAM_TIMEOUT_SECONDS="0.5")
    fake.script(Reply.stall(3.0))
    ws = await service.ws()

    frames = await ws.turn("Hello")

    assert [f["type"] for f in frames] == ["turn.started", "turn.error"]
    assert frames[-1]["code"] == "timeout"
    assert frames[-1]["retryable"] is True
    stored = await service.db.messages.find_one({"_id": frames[0]["assistant_message_id"]})
    assert stored["status"] == "error"
    assert await fake.requests[0].wait_finished(within=3)
    assert fake.requests[0].closed_by_client.is_set()
    await ws.close()


async def test_upstream_failure_over_sse_is_a_turn_error_event(
    service: Service, fake: FakeAnthropic
) -> None:
    fake.script(Reply.drop_after(["Half ", "an ", "answer"]))
    async with service.http.post(
        "/api/turns", json={"turn_id": "t-sse-drop", "content": "Hi"}, headers=service.headers()
    ) as response:
        assert response.status == 200
        events = await SseReader(response).until()
    error = events[-1]
    assert error.event == "turn.error"
    assert error.data["code"] == "upstream_unavailable"
    assert error.data["partial"]["content"] == "Half an answer"
    assert SECRET not in json.dumps([e.data for e in events])
    # What a client was told is what is stored, and the conversation is free again.
    started = events[0].data
    stored = await service.db.messages.find_one({"_id": started["assistant_message_id"]})
    assert stored["status"] == "error"
    assert stored["content"] == "Half an answer"
    assert stored["error"]["code"] == "upstream_unavailable"
    turn = await service.db.turns.find_one({"turn_id": "t-sse-drop"})
    assert turn["status"] == "error"
    conversation = await service.db.conversations.find_one({"_id": started["conversation_id"]})
    assert conversation["running_turn_id"] is None


async def test_a_failed_turn_logs_one_line_and_asks_for_no_title(
    service: Service, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(Reply.http_error(401, error_type="authentication_error", message=SECRET))
    ws = await service.ws(user="bob", tenant="acme")
    with caplog.at_level("WARNING", logger="server.turns.engine"):
        frames = await ws.turn("Hi")

    assert frames[-1]["type"] == "turn.error"
    turn_id = frames[-1]["turn_id"]
    lines = [r.getMessage() for r in caplog.records if turn_id in r.getMessage()]
    assert len(lines) == 1, lines
    assert "acme/bob" in lines[0]
    assert "upstream_error" in lines[0]
    assert "upstream status 401" in lines[0]
    assert SECRET not in lines[0]
    await ws.turn("Hi again", conversation_id=frames[0]["conversation_id"])
    assert fake.title_requests == [], "no title for a conversation whose answer failed"
    await ws.close()


@pytest.mark.parametrize("name", FAILURES)
async def test_upstream_failure_after_a_tool_round_keeps_the_round(
    service: Service, fake: FakeAnthropic, name: str
) -> None:
    failure = FAILURES[name]
    fake.script(
        weather_round(),
        failure.reply,  # the request that carries the tool's result fails
    )
    ws = await service.ws()

    frames = await ws.turn("Weather in Paris?")

    error = frames[-1]
    assert [f["type"] for f in frames if f["type"] != "turn.delta"] == [
        "turn.started",
        "turn.tool_call",
        "turn.tool_result",
        "turn.error",
    ]
    assert (error["code"], error["retryable"]) == (failure.code, failure.retryable)
    assert SECRET not in json.dumps(frames)
    text = "Let me check. " + failure.partial
    assert text_of(frames) == text
    assert error["partial"]["blocks"][:3] == WEATHER_ROUND_STORED
    stored = await service.db.messages.find_one({"_id": frames[0]["assistant_message_id"]})
    assert (stored["status"], stored["content"]) == ("error", text)
    assert stored["blocks"][:3] == WEATHER_ROUND_STORED
    assert stored["error"]["code"] == failure.code
    assert (await service.db.turns.find_one({"turn_id": error["turn_id"]}))["status"] == "error"
    await ws.close()
