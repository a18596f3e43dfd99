"""`GET /metrics`: what an operator's Prometheus sees, after real turns over both transports."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.api_client import sse_turn
from tests.conftest import Service
from tests.fake_anthropic import FakeAnthropic, Reply


async def scrape(service: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await service.http.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def test_metrics_count_connections_turns_tokens_errors_and_database_calls(
    service: Service, fake: FakeAnthropic
) -> None:
    before = await scrape(service)
    assert before["chat_ws_connections_open", ()] == 0
    assert before["chat_tokens_relayed_total", ()] == 0

    fake.script(
        Reply.text(["one ", "two ", "three"]),
        Reply.http_error(429, error_type="rate_limit_error", message="slow down"),
    )
    ws = await service.ws()
    assert (await ws.turn("Count"))[-1]["type"] == "turn.done"
    assert (await ws.turn("Again"))[-1]["type"] == "turn.error"
    events = await sse_turn(service, "Over SSE")  # the fake's default: an echo in three deltas
    assert events[-1]["type"] == "turn.done"

    fake.script(Reply.endless(chunk="tick ", delay=0.02))
    await ws.turn_started("Forever")
    await ws.until("turn.delta")
    during = await scrape(service)
    assert during["chat_ws_connections_open", ()] == 1
    assert during["chat_turns_running", ()] == 1
    assert during["chat_tokens_relayed_total", ()] >= 6
    assert during["chat_turn_duration_seconds_count", (("status", "complete"),)] == 2
    assert during["chat_turn_duration_seconds_count", (("status", "error"),)] == 1
    assert during["chat_time_to_first_token_seconds_count", ()] == 3
    assert during["chat_upstream_errors_total", (("code", "rate_limited"),)] == 1
    # Each turn start writes its new documents as upserts: `update` commands.
    updates = during["chat_db_operation_seconds_count", (("command", "update"), ("outcome", "ok"))]
    assert updates >= 3
    await ws.close()
