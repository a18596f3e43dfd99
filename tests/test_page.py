"""The bundled page in a real headless Chromium, against the real service:
sign-in, streaming, stop, reload, SSE fallback, safety, sidebar actions.

Fixtures and helpers live in tests/browser_page.py.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_page import (
    DESKTOP,
    PHONE,
    assistant,
    needs_chromium,
    screenshot,
    send,
    sign_in,
    unique,
)
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.live_server import LiveServer

pytestmark = needs_chromium

XSS = "<img src=x onerror=alert(1)>"


@pytest.mark.screenshot
def test_sign_in_send_and_see_the_streamed_answer(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    chunks = [
        "Hello",
        " from",
        " **the**",
        " fake",
        " model.",
        "\n\n```python\n",
        "print('hi')\n```",
    ]
    upstream.script(Reply.text(chunks, delay=0.15))
    sign_in(page, server, unique("ana"))
    send(page, "Say hello")
    answer = assistant(page)
    expect(answer).to_contain_text("Hello", timeout=5000)
    expect(answer).to_contain_text("Hello from the fake model.", timeout=10000)
    expect(answer).to_have_attribute("data-status", "complete")
    expect(answer.locator("strong")).to_have_text("the")
    expect(answer.locator("pre code")).to_contain_text("print('hi')")
    expect(page.locator("#chat-title")).to_have_text("Fake title", timeout=10000)
    expect(page.get_by_test_id("conversation").first).to_contain_text("Fake title")
    expect(page.locator('[data-testid="message"][data-role="user"]').last).to_contain_text(
        "Say hello"
    )
    screenshot(page, "desktop")


def test_stop_keeps_the_partial_answer(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    upstream.script(Reply.endless(chunk="word ", delay=0.05))
    sign_in(page, server, unique("bo"))
    send(page, "Talk forever")
    answer = assistant(page)
    expect(answer).to_contain_text("word word word", timeout=10000)
    page.get_by_role("button", name="Stop").click()
    expect(answer).to_have_attribute("data-status", "cancelled", timeout=5000)
    expect(answer).to_contain_text("Stopped")
    kept = answer.inner_text()
    assert "word" in kept
    page.wait_for_timeout(300)
    assert answer.inner_text() == kept, "no text may arrive after the stop"
    assert upstream.requests[-1].closed_by_client.wait(5), "the upstream request was not closed"


def test_reload_shows_the_history(page: Page, server: LiveServer, upstream: FakeAnthropic) -> None:
    upstream.script(Reply.text(["Remember", " me."]))
    sign_in(page, server, unique("cy"))
    send(page, "First message")
    expect(assistant(page)).to_have_attribute("data-status", "complete", timeout=10000)
    page.reload()
    expect(page.get_by_test_id("conversation").first).to_be_visible(timeout=10000)
    page.get_by_test_id("conversation").first.click()
    expect(page.get_by_test_id("messages")).to_contain_text("First message", timeout=10000)
    expect(assistant(page)).to_contain_text("Remember me.")


def test_a_running_turn_is_reattached_after_reload(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    chunks = [f"part{i} " for i in range(30)]
    upstream.script(Reply.text(chunks, delay=0.1))
    sign_in(page, server, unique("di"))
    send(page, "A long answer please")
    expect(assistant(page)).to_contain_text("part3", timeout=10000)
    page.reload()
    answer = assistant(page)
    expect(answer).to_contain_text("part29", timeout=15000)
    expect(answer).to_have_attribute("data-status", "complete", timeout=10000)
    # Exactly the answer: nothing lost, nothing doubled across the reload.
    expect(answer.locator(".msg-body")).to_have_text("".join(chunks).strip())


def test_sse_fallback_when_websockets_are_blocked(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    page.add_init_script("window.WebSocket = function () { throw new Error('blocked by proxy'); };")
    upstream.script(
        Reply.text(["Over", " SSE."], delay=0.05), Reply.endless(chunk="sse ", delay=0.05)
    )
    sign_in(page, server, unique("ed"))
    expect(page.get_by_test_id("connection")).to_contain_text("SSE", timeout=10000)
    send(page, "Hello over SSE")
    expect(assistant(page)).to_contain_text("Over SSE.", timeout=10000)
    expect(assistant(page)).to_have_attribute("data-status", "complete", timeout=10000)
    send(page, "Now stop")
    expect(assistant(page)).to_contain_text("sse sse", timeout=10000)
    page.get_by_role("button", name="Stop").click()
    expect(assistant(page)).to_have_attribute("data-status", "cancelled", timeout=5000)


@pytest.mark.screenshot
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_markup_is_shown_as_text_never_run(
    browser: Browser, server: LiveServer, upstream: FakeAnthropic, viewport: dict[str, int]
) -> None:
    upstream.clear()
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    upstream.script(Reply.text([f"Echoing {XSS} and ", "<script>alert(2)</script>", " `code`"]))
    sign_in(page, server, unique("fi"))
    send(page, XSS)
    answer = assistant(page)
    expect(answer).to_have_attribute("data-status", "complete", timeout=10000)
    expect(answer).to_contain_text(XSS)
    expect(page.locator('[data-testid="message"][data-role="user"]').last).to_contain_text(XSS)
    assert page.locator('[data-testid="messages"] img').count() == 0
    assert page.locator('[data-testid="messages"] script').count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []
    if viewport == PHONE:
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "phone")
    context.close()


def test_phone_viewport_full_flow(phone: Page, server: LiveServer, upstream: FakeAnthropic) -> None:
    page = phone
    upstream.script(Reply.text(["Small", " screens", " work."], delay=0.05))
    sign_in(page, server, unique("gu"))
    send(page, "Hi from a phone")
    expect(assistant(page)).to_contain_text("Small screens work.", timeout=10000)
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_rejected_token_brings_back_the_sign_in(page: Page, server: LiveServer) -> None:
    page.goto(server.base_url)
    page.evaluate("sessionStorage.setItem('chat.token', JSON.stringify('expired.or.forged'))")
    page.reload()
    expect(page.get_by_label("Your name")).to_be_visible(timeout=10000)
    expect(page.locator("#signin-message")).to_contain_text("Sign in again")


def test_a_failed_answer_says_why_and_retry_starts_a_new_turn(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    upstream.script(
        Reply.http_error(529, error_type="overloaded_error"), Reply.text(["Second", " time."])
    )
    sign_in(page, server, unique("ha"))
    send(page, "Try me")
    failed = assistant(page)
    expect(failed).to_have_attribute("data-status", "error", timeout=10000)
    expect(failed).to_contain_text("Error")
    assert "overloaded_error" not in failed.inner_text(), "provider bodies are never shown"
    failed.get_by_role("button", name="Retry").click()
    answer = assistant(page)
    expect(answer).to_contain_text("Second time.", timeout=10000)
    expect(answer).to_have_attribute("data-status", "complete")
    assert upstream.requests[-1].sent["messages"][-1]["content"] == "Try me"


def test_rename_archive_and_delete_from_the_sidebar(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    sign_in(page, server, unique("io"))
    for text in ("first chat", "second chat"):
        page.get_by_role("button", name="New chat").click()
        send(page, text)
        expect(assistant(page)).to_have_attribute("data-status", "complete", timeout=10000)
    items = page.get_by_test_id("conversation")
    expect(items).to_have_count(2, timeout=10000)

    items.first.hover()  # row actions show on hover or focus
    items.first.get_by_role("button", name="Rename").click()
    title_box = page.get_by_label("Conversation title")
    title_box.fill("Renamed by hand")
    title_box.press("Enter")
    expect(items.first).to_contain_text("Renamed by hand")
    page.reload()
    expect(page.get_by_test_id("conversation").first).to_contain_text(
        "Renamed by hand", timeout=10000
    )

    page.get_by_test_id("conversation").first.hover()
    page.get_by_test_id("conversation").first.get_by_role("button", name="Archive").click()
    expect(page.get_by_test_id("conversation")).to_have_count(1)

    page.get_by_test_id("conversation").first.hover()
    page.get_by_test_id("conversation").first.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_test_id("conversation")).to_have_count(0)
    page.reload()
    page.wait_for_timeout(500)
    expect(page.get_by_test_id("conversation")).to_have_count(0)
