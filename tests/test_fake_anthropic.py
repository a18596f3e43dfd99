"""The fake upstream, driven by the real ``anthropic`` SDK (not by our server).

These pin what each scripted reply looks like to the SDK the service uses: the
text it yields, the final message, and the exact exception class of each
failure, which the turn engine maps to error codes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest
from anthropic.types import Message

from server.errors import UpstreamTimeout, UpstreamUnavailable
from server.model.claude import upstream_failure
from tests.fake_anthropic import RECORDED_STREAMS, FakeAnthropic, Reply

MODEL = "claude-test-model"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="test", max_retries=0)
    yield client
    await client.close()


async def stream(
    client: anthropic.AsyncAnthropic, content: str = "hi", **options: Any
) -> tuple[list[str], Message]:
    """One streamed request as the service makes it: the text deltas and the final message."""
    deltas: list[str] = []
    async with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": content}], **options
    ) as events:
        async for text in events.text_stream:
            deltas.append(text)
        return deltas, await events.get_final_message()


async def stream_until_error(
    client: anthropic.AsyncAnthropic, expected: type[BaseException]
) -> tuple[list[str], pytest.ExceptionInfo[BaseException]]:
    """The text deltas received before the stream failed with ``expected``."""
    deltas: list[str] = []
    with pytest.raises(expected) as raised:
        async with client.messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as events:
            async for text in events.text_stream:
                deltas.append(text)
    return deltas, raised


async def test_text_reply_streams_each_chunk_and_a_complete_message(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script(Reply.text(["Hel", "lo", "!"], input_tokens=42, stop_reason="max_tokens"))

    deltas, message = await stream(client, system="Be brief.")

    assert deltas == ["Hel", "lo", "!"]
    assert message.content[0].type == "text" and message.content[0].text == "Hello!"
    assert message.model == MODEL
    assert message.stop_reason == "max_tokens"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (42, 3)
    [request] = fake.requests
    assert request.body["system"] == "Be brief."
    assert request.body["messages"] == [{"role": "user", "content": "hi"}]
    # SDK 2.x sends the key as a bearer token, not x-api-key.
    assert request.headers["authorization"] == "Bearer test"
    assert request.headers["anthropic-version"]
    # message_start, content_block_start, ping, 3 deltas, block stop, message_delta, message_stop
    assert request.events_sent == 9
    assert request.finished.is_set() and not request.closed_by_client.is_set()


async def test_unscripted_request_gets_an_echo_in_three_chunks(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    deltas, message = await stream(client, "how are you")

    assert "".join(deltas) == "Echo: how are you"
    assert len(deltas) == 3
    assert message.stop_reason == "end_turn"


async def test_script_is_consumed_in_order_and_clear_drops_it(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script(Reply.text(["first"]), Reply.text(["second"]), Reply.text(["never"]))

    assert (await stream(client))[0] == ["first"]
    assert (await stream(client))[0] == ["second"]
    fake.clear()
    assert fake.requests == []
    assert "".join((await stream(client, "again"))[0]) == "Echo: again"


async def test_title_requests_are_answered_apart_and_leave_the_script(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script(Reply.text(["scripted"]))
    system = [{"type": "text", "text": "Write a short Conversation Title for this chat."}]

    title, _ = await stream(client, system=system)
    chat, _ = await stream(client)

    assert "".join(title) == "Fake title"
    assert chat == ["scripted"]
    assert [r.body["system"] for r in fake.title_requests] == [system]
    assert len(fake.requests) == 1


async def test_first_delay_holds_back_the_first_token(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script(Reply.text(["slow"], first_delay=0.2))

    started = time.monotonic()
    await stream(client)

    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    ("name", "text", "stop_reason"),
    [
        ("basic", "Hello there!", "end_turn"),
        ("extra_fields", "Hello!", "end_turn"),
        ("refusal", "", "refusal"),
        ("tool_use", "I'll check the current weather in Paris for you.", "tool_use"),
    ],
)
async def test_recorded_stream_gives_its_text_and_stop_reason(
    client: anthropic.AsyncAnthropic,
    fake: FakeAnthropic,
    name: str,
    text: str,
    stop_reason: str,
) -> None:
    fake.script(Reply.recorded(name))

    deltas, message = await stream(client)

    assert "".join(deltas) == text
    assert message.stop_reason == stop_reason


async def test_recorded_tool_use_block_is_assembled(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script(Reply.recorded("tool_use"))

    _, message = await stream(client)

    tool = message.content[1]
    assert tool.type == "tool_use"
    assert (tool.name, tool.input) == ("get_weather", {"location": "Paris"})


async def test_recorded_stream_is_replayed_with_the_file_bytes(fake: FakeAnthropic) -> None:
    fake.script(Reply.recorded("basic"))
    body = {
        "model": MODEL,
        "max_tokens": 10,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }

    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/v1/messages", json=body) as response,
    ):
        received = await response.read()

    assert response.content_type == "text/event-stream"
    assert response.headers["request-id"]
    # The file ends its last event with one newline; the fake restores the blank line.
    assert received == (RECORDED_STREAMS / "basic.sse").read_bytes() + b"\n"


async def test_message_stop_of_a_recording_reaches_the_sdk(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script(Reply.recorded("basic"))

    async with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as events:
        kinds = [event.type async for event in events]

    assert kinds[-1] == "message_stop"


def test_unknown_recording_fails_at_script_time() -> None:
    with pytest.raises(FileNotFoundError):
        Reply.recorded("no_such_stream")


async def test_rate_limit_is_a_rate_limit_error_with_retry_after(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script(Reply.http_error(429, error_type="rate_limit_error", headers={"retry-after": "7"}))

    _, raised = await stream_until_error(client, anthropic.RateLimitError)

    error = raised.value
    assert isinstance(error, anthropic.RateLimitError)
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.type == "rate_limit_error"
    assert error.request_id is not None and error.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("status", "error_type", "exception"),
    [
        (529, "overloaded_error", anthropic.OverloadedError),
        (500, "api_error", anthropic.InternalServerError),
        (401, "authentication_error", anthropic.AuthenticationError),
    ],
)
async def test_http_error_raises_the_sdk_class_for_its_status(
    fake: FakeAnthropic,
    client: anthropic.AsyncAnthropic,
    status: int,
    error_type: str,
    exception: type[anthropic.APIStatusError],
) -> None:
    fake.script(Reply.http_error(status, error_type=error_type, message="nope"))

    _, raised = await stream_until_error(client, anthropic.APIStatusError)

    assert type(raised.value) is exception
    assert isinstance(raised.value, anthropic.APIStatusError)
    assert (raised.value.status_code, raised.value.type) == (status, error_type)
    assert raised.value.api_message == "nope"
    assert len(fake.requests) == 1


async def test_overloaded_is_an_internal_server_error(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script(Reply.http_error(529, error_type="overloaded_error"))

    await stream_until_error(client, anthropic.InternalServerError)


async def test_drop_mid_stream_is_a_lost_connection_whatever_the_sdk_raises(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    """anthropic 2.16 let httpx2's ``RemoteProtocolError`` through raw; 2.17
    wraps it in ``APIConnectionError``. Which class is the SDK's business: the
    service's reading of it (a lost connection, worth retrying) must not move."""
    fake.script(Reply.drop_after(["par", "tial"]))

    deltas, raised = await stream_until_error(client, Exception)

    assert deltas == ["par", "tial"]
    failure = upstream_failure(raised.value)
    assert isinstance(failure, UpstreamUnavailable), repr(raised.value)
    assert failure.retryable


async def test_error_event_mid_stream_is_a_bare_api_status_error(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script(Reply.error_event(["par", "tial"]))

    deltas, raised = await stream_until_error(client, anthropic.APIStatusError)

    assert deltas == ["par", "tial"]
    # The response said 200, so the SDK cannot pick a subclass from the status.
    assert type(raised.value) is anthropic.APIStatusError
    assert isinstance(raised.value, anthropic.APIStatusError)
    assert (raised.value.status_code, raised.value.type) == (200, "overloaded_error")
    assert raised.value.api_message == "Overloaded"


async def test_stall_ends_normally_with_no_text(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script(Reply.stall(0.1))

    deltas, message = await stream(client)

    assert deltas == []
    assert message.stop_reason == "end_turn"


async def test_stall_beyond_the_read_timeout_is_a_timeout_whatever_the_sdk_raises(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    """Headers came, then nothing: 2.16 raised httpx2's ``ReadTimeout``, 2.17
    its own ``APITimeoutError``. Either way the service calls it a time-out
    and the connection is closed."""
    fake.script(Reply.stall(5))

    with pytest.raises(Exception) as raised:  # the class is the SDK's choice
        await stream(client, timeout=0.2)

    failure = upstream_failure(raised.value)
    assert isinstance(failure, UpstreamTimeout), repr(raised.value)
    assert failure.retryable
    [request] = fake.requests
    assert await request.wait_finished(within=2)
    assert request.closed_by_client.is_set()


async def test_endless_stream_notices_the_client_closing(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.script(Reply.endless(chunk="tick ", delay=0.01))

    async with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as events:
        async for text in events.text_stream:
            if text == "tick " and fake.requests[0].events_sent >= 5:
                break
    left_at = time.monotonic()

    [request] = fake.requests
    assert await request.wait_finished(within=2)
    assert request.closed_by_client.is_set()
    assert request.closed_at is not None and request.closed_at - left_at < 0.5


async def test_non_streaming_request_is_refused(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        await client.messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )

    assert raised.value.type == "invalid_request_error"
    assert fake.requests == []


def test_running_in_thread_serves_a_sync_client() -> None:
    with FakeAnthropic().running_in_thread() as fake:
        fake.script(Reply.text(["from ", "a thread"]))
        client = anthropic.Anthropic(base_url=fake.base_url, api_key="test", max_retries=0)
        with client.messages.stream(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as events:
            text = "".join(events.text_stream)
        client.close()

        assert text == "from a thread"
        assert fake.requests[0].finished.wait(timeout=2)
