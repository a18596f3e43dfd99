"""The page's reconnect logic in a real browser, each test named after the bug it pins.

Failures are provoked outside our code: Playwright's routing (abort or fulfil a
request, refuse the WebSocket) and its clock, which jumps over backoff waits.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, Request, Route, WebSocketRoute, expect

from tests.browser_page import assistant, needs_chromium, send, sign_in, unique, wait_until
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.live_server import LiveServer

pytestmark = needs_chromium

LONGEST_BACKOFF_MS = 10_000
GIVE_UP_AFTER = 8  # re-attaches without progress (static/sse.js)


def sse_event(frame: dict[str, object]) -> str:
    return f"event: {frame['type']}\nid: {frame['seq']}\ndata: {json.dumps(frame)}\n\n"


def event_stream(route: Route, body: str) -> None:
    route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)


def test_sse_reattach_without_progress_backs_off_and_gives_up(
    page: Page, server: LiveServer
) -> None:
    """Bug: the attempt counter reset on every open, so a stream that opened
    and ended with nothing new was re-opened every 0.5 s for ever."""
    started: dict[str, object] = {}
    reattaches: list[str | None] = []
    finished = [False]

    def start(route: Route) -> None:
        turn_id = json.loads(route.request.post_data or "{}")["turn_id"]
        started.update(type="turn.started", turn_id=turn_id, seq=1, conversation_id=turn_id)
        delta = {"type": "turn.delta", "turn_id": turn_id, "seq": 2, "text": "Partial"}
        event_stream(route, sse_event(started) + sse_event(delta))

    def events(route: Route) -> None:
        reattaches.append(route.request.headers.get("last-event-id"))
        done = {
            "type": "turn.done",
            "turn_id": started["turn_id"],
            "seq": 3,
            "message": {"content": "Partial answer.", "status": "complete"},
        }
        # Opens, then ends with no new event: no progress.
        event_stream(route, sse_event(done) if finished[0] else ": ping\n\n")

    page.clock.install()
    page.route("**/api/turns", start)
    page.route("**/api/turns/*/events", events)
    sign_in(page, server, unique("sa"), "?transport=sse")
    send(page, "Hello")
    answer = assistant(page)
    expect(answer).to_contain_text("Partial")

    def gave_up() -> bool:
        return answer.get_attribute("data-status") == "error"

    for _ in range(GIVE_UP_AFTER + 4):
        if gave_up():
            break
        seen = len(reattaches)
        page.clock.fast_forward(LONGEST_BACKOFF_MS)
        wait_until(page, lambda seen=seen: len(reattaches) > seen or gave_up())
    expect(answer).to_have_attribute("data-status", "error")
    assert 2 <= len(reattaches) <= GIVE_UP_AFTER
    assert set(reattaches) == {"2"}
    expect(answer).to_contain_text("connection")

    # Retry picks the same turn up again where it stopped; it does not ask again.
    finished[0] = True
    answer.get_by_role("button", name="Retry").click()
    expect(answer).to_have_attribute("data-status", "complete")
    expect(answer.locator(".msg-body")).to_have_text("Partial answer.")
    expect(page.locator('[data-testid="message"][data-role="assistant"]')).to_have_count(1)


def test_after_falling_back_to_sse_the_websocket_is_tried_again(
    page: Page, server: LiveServer
) -> None:
    """Bug: two failed connects before the first `ready` meant SSE for good."""
    blocked = [True]
    posts: list[str] = []

    def socket(ws: WebSocketRoute) -> None:
        if blocked[0]:
            ws.close()
        else:
            ws.connect_to_server()

    page.route_web_socket("**/ws", socket)

    def count_start(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/api/turns"):
            posts.append(request.url)

    page.on("request", count_start)
    page.clock.install()
    sign_in(page, server, unique("wb"))
    connection = page.get_by_test_id("connection")
    expect(connection).to_have_attribute("data-state", "sse")
    send(page, "over sse")
    expect(assistant(page)).to_have_attribute("data-status", "complete")
    assert len(posts) == 1

    blocked[0] = False
    page.clock.fast_forward("01:00")
    expect(connection).to_have_attribute("data-state", "connected")
    send(page, "over the socket")
    expect(assistant(page)).to_contain_text("Echo: over the socket")
    expect(assistant(page)).to_have_attribute("data-status", "complete")
    assert len(posts) == 1, "the second turn went over the WebSocket"


def test_a_failed_stop_over_sse_is_sent_again(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    """Bug: a cancel POST that failed was swallowed and never resent."""
    upstream.script(Reply.endless(chunk="more ", delay=0.05))
    cancels: list[str] = []

    def cancel(route: Route) -> None:
        cancels.append(route.request.url)
        if len(cancels) == 1:
            route.abort()
        else:
            route.continue_()

    page.route("**/api/turns/*/cancel", cancel)
    sign_in(page, server, unique("sc"), "?transport=sse")
    send(page, "Go on")
    answer = assistant(page)
    expect(answer).to_contain_text("more more")
    page.get_by_role("button", name="Stop").click()
    expect(answer.locator(".msg-state")).to_contain_text("Stopping")
    expect(answer).to_have_attribute("data-status", "cancelled")
    assert len(cancels) == 2
    assert upstream.requests[-1].closed_by_client.wait(5)


@pytest.mark.parametrize("transport", ["ws", "sse"])
def test_a_resume_past_the_last_seq_still_reaches_the_end(
    page: Page, server: LiveServer, upstream: FakeAnthropic, transport: str
) -> None:
    """Bug: resuming after a seq the turn never reached got a snapshot, but the
    seq stayed too high, so every later frame (the ending too) was skipped."""
    chunks = [f"word{i} " for i in range(20)]
    upstream.script(Reply.text(chunks, delay=0.1))
    # After the reload, the saved running turn claims a seq the server never sent.
    page.add_init_script("""
        if (sessionStorage.getItem("test.inflate-seq")) {
          sessionStorage.removeItem("test.inflate-seq");
          const turns = JSON.parse(sessionStorage.getItem("chat.turns") || "{}");
          for (const turn of Object.values(turns)) turn.seq = 999;
          sessionStorage.setItem("chat.turns", JSON.stringify(turns));
        }
    """)
    sign_in(page, server, unique("rs"), "" if transport == "ws" else "?transport=sse")
    send(page, "Count for me")
    expect(assistant(page)).to_contain_text("word3")
    page.evaluate("sessionStorage.setItem('test.inflate-seq', '1')")
    page.reload()
    answer = assistant(page)
    expect(answer).to_have_attribute("data-status", "complete", timeout=8000)
    expect(answer.locator(".msg-body")).to_have_text("".join(chunks).strip())
    saved = page.evaluate("sessionStorage.getItem('chat.turns')")
    assert json.loads(saved or "{}") == {}
