"""The page for issues 9 and 11: tool calls as cards, extended thinking shown
collapsed with the answer, how an answer stopped (cut short, refused), web
search sources and citations, and the sidebar's search box; at desktop and
phone width.

The fake upstream scripts the wire format (tests/fake_anthropic.py); the
service runs the real tools (get_weather from tests/tools_for_tests.py).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser_page import (
    assistant,
    fits_the_width,
    needs_chromium,
    screenshot,
    send,
    sign_in,
    unique,
)
from tests.fake_anthropic import (
    FakeAnthropic,
    RedactedThinking,
    Reply,
    Text,
    Thinking,
    ToolUse,
    Whole,
)
from tests.live_server import LiveServer

pytestmark = needs_chromium

THOUGHT = " ".join(f"Step {n}: weigh the numbers." for n in range(1, 13))
PARIS = "https://example.com/paris-weather"


def open_conversations(page: Page) -> None:
    """On a phone the sidebar is a drawer: open it."""
    toggle = page.get_by_role("button", name="Conversations", exact=True)
    if toggle.is_visible():
        toggle.click()


@pytest.mark.screenshot
def test_a_tool_turn_shows_each_call_as_a_card_updated_by_its_result(
    screen: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    page = screen
    upstream.script(
        Reply.blocks(
            Text(["Let me check Paris."]),
            ToolUse("toolu_w1", "get_weather", {"location": "Paris"}),
            stop_reason="tool_use",
        ),
        Reply.blocks(
            ToolUse("toolu_w2", "get_weather", {"location": "Oslo"}), stop_reason="tool_use"
        ),
        Reply.text(["Both are ", "sunny: Paris and Oslo, 21 °C."]),
    )
    sign_in(page, server, unique("tool"))
    send(page, "Weather in Paris and Oslo?")
    answer = assistant(page)
    expect(answer).to_have_attribute("data-status", "complete", timeout=10_000)
    cards = answer.get_by_test_id("tool-call")
    expect(cards).to_have_count(2)
    expect(cards.first).to_have_attribute("data-status", "ok")
    expect(cards.first).to_contain_text("get_weather")
    expect(cards.first).to_contain_text("location: Paris")
    expect(cards.first).to_contain_text("Done")
    expect(cards.nth(1)).to_contain_text("location: Oslo")
    # In the answer's flow: text, a card, a card, text.
    kinds = answer.locator(".msg-body > [data-kind]").evaluate_all(
        "nodes => nodes.map(n => n.dataset.kind)"
    )
    assert kinds == ["text", "tool", "tool", "text"]
    result = cards.first.locator(".tool-result")
    expect(result).not_to_be_visible()
    cards.first.locator("summary").press("Enter")  # from the keyboard
    expect(result).to_have_text("Sunny in Paris, 21 °C")
    expect(cards.first.locator(".tool-input")).to_contain_text('"location": "Paris"')
    assert fits_the_width(page)
    screenshot(page, "tools" if page.width_name == "desktop" else "tools-phone")  # type: ignore[attr-defined]

    page.reload()
    answer = assistant(page)
    expect(answer.get_by_test_id("tool-call")).to_have_count(2, timeout=10_000)
    expect(answer.get_by_test_id("tool-call").nth(1)).to_have_attribute("data-status", "ok")
    expect(answer).to_contain_text("Both are sunny")


def test_a_running_tool_shows_a_spinner_then_its_failure(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    upstream.script(
        Reply.blocks(
            ToolUse("toolu_s1", "slow_tool", {"seconds": 1, "label": "card"}),
            ToolUse("toolu_f1", "failing_tool", {"reason": "broken on purpose"}),
            stop_reason="tool_use",
        ),
        Reply.text(["One worked, one did not."]),
    )
    sign_in(page, server, unique("spin"))
    send(page, "Run both")
    cards = assistant(page).get_by_test_id("tool-call")
    expect(cards.first).to_have_attribute("data-status", "running", timeout=10_000)
    expect(cards.first).to_contain_text("Running…")
    expect(cards.nth(1)).to_have_attribute("data-status", "error")
    expect(cards.nth(1)).to_contain_text("Failed")
    expect(cards.first).to_have_attribute("data-status", "ok", timeout=10_000)
    expect(assistant(page)).to_have_attribute("data-status", "complete")


@pytest.mark.screenshot
def test_thinking_is_collapsed_expandable_while_it_streams_and_kept_after_reload(
    screen: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    page = screen
    phone = page.width_name == "phone"  # type: ignore[attr-defined]
    if phone:
        page.emulate_media(color_scheme="dark")
    upstream.script(
        Reply.blocks(
            Thinking(THOUGHT, delay=0.15, pieces=12),
            Text(["The answer ", "is **42**."], delay=0.05),
        )
    )
    sign_in(page, server, unique("think"))
    page.get_by_label("Think first").check()
    expect(page.get_by_label("Thinking budget")).to_have_value("2048")
    send(page, "What is six times seven?")
    answer = assistant(page)
    thinking = answer.get_by_test_id("thinking")
    expect(thinking).to_contain_text("Thinking…", timeout=10_000)
    expect(thinking).not_to_have_attribute("open", "")
    thinking.locator("summary").click()  # open it while it streams
    text = thinking.locator(".thinking-text")
    expect(text).to_contain_text("Step 2")
    before = len(text.inner_text())
    expect(text).to_contain_text("Step 12", timeout=10_000)
    assert len(text.inner_text()) > before, "the open section keeps growing"
    expect(answer).to_have_attribute("data-status", "complete", timeout=10_000)
    expect(thinking).to_have_attribute("open", "")  # not closed under the reader
    expect(thinking.locator("summary")).to_have_text(
        re.compile(r"^Thought for (a moment|\d+ seconds)$")
    )
    # Above the text it led to.
    kinds = answer.locator(".msg-body > [data-kind]").evaluate_all(
        "nodes => nodes.map(n => n.dataset.kind)"
    )
    assert kinds == ["thinking", "text"]
    expect(answer.locator("strong")).to_have_text("42")
    assert upstream.requests[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert fits_the_width(page)
    screenshot(page, "thinking-phone" if phone else "thinking")

    page.reload()
    thinking = assistant(page).get_by_test_id("thinking")
    expect(thinking.locator("summary")).to_have_text("Show thinking", timeout=10_000)
    expect(thinking).not_to_have_attribute("open", "")
    expect(thinking.locator(".thinking-text")).not_to_be_visible()
    thinking.locator("summary").click()
    expect(thinking.locator(".thinking-text")).to_have_text(THOUGHT)
    # The conversation kept the setting: the next turn thinks too.
    expect(page.get_by_label("Think first")).to_be_checked()


def test_turning_thinking_off_saves_it_on_the_conversation(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    sign_in(page, server, unique("off"))
    page.get_by_label("Think first").check()
    send(page, "First")
    expect(assistant(page)).to_have_attribute("data-status", "complete", timeout=10_000)
    assert upstream.requests[-1].body.get("thinking") is not None
    page.get_by_label("Think first").uncheck()
    expect(page.get_by_label("Thinking budget")).to_be_hidden()
    page.reload()
    expect(page.locator("#chat-title")).not_to_have_text("New chat", timeout=10_000)
    expect(page.get_by_label("Think first")).not_to_be_checked()
    send(page, "Second")
    expect(assistant(page)).to_contain_text("Echo: Second", timeout=10_000)
    assert upstream.requests[-1].body.get("thinking") is None


def test_redacted_thinking_says_so(page: Page, server: LiveServer, upstream: FakeAnthropic) -> None:
    upstream.script(Reply.blocks(RedactedThinking(), Text(["Done."])))
    sign_in(page, server, unique("redact"))
    send(page, "Think in secret")
    expect(assistant(page)).to_have_attribute("data-status", "complete", timeout=10_000)
    expect(assistant(page).get_by_test_id("thinking")).to_contain_text("Some thinking was redacted")


def test_a_cut_short_answer_offers_continue(
    screen: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    page = screen
    upstream.script(
        Reply.text(["Once upon a time, ", "there was"], stop_reason="max_tokens"),
        Reply.text([" a fox."]),
    )
    sign_in(page, server, unique("cut"))
    send(page, "Tell me a story")
    answer = assistant(page)
    expect(answer).to_contain_text("Cut short (length limit)", timeout=10_000)
    expect(answer.get_by_role("button", name="Retry")).to_have_count(0)
    answer.get_by_role("button", name="Continue").click()
    expect(
        page.locator('[data-testid="message"][data-role="user"]').last.locator(".msg-body")
    ).to_have_text("Continue")
    expect(assistant(page)).to_contain_text("a fox.", timeout=10_000)
    assert upstream.requests[-1].sent["messages"][-1]["content"] == "Continue"
    # Only the latest answer goes on.
    expect(page.get_by_role("button", name="Continue")).to_have_count(0)
    assert fits_the_width(page)


@pytest.mark.parametrize(
    ("stop_reason", "chunks", "note"),
    [
        ("refusal", [], "Claude declined to answer this."),
        ("model_context_window_exceeded", ["Part of it"], "Start a new chat"),
    ],
)
def test_a_refusal_and_a_full_context_are_said_plainly(
    page: Page,
    server: LiveServer,
    upstream: FakeAnthropic,
    stop_reason: str,
    chunks: list[str],
    note: str,
) -> None:
    upstream.script(Reply.text(chunks, stop_reason=stop_reason))
    sign_in(page, server, unique("stop"))
    send(page, "Something")
    answer = assistant(page)
    expect(answer).to_have_attribute("data-status", "complete", timeout=10_000)
    expect(answer.locator(".msg-note")).to_contain_text(note)
    expect(answer.get_by_role("button", name="Retry")).to_have_count(0)
    expect(answer.get_by_role("button", name="Continue")).to_have_count(0)
    page.reload()
    expect(assistant(page).locator(".msg-note")).to_contain_text(note, timeout=10_000)


@pytest.mark.screenshot
def test_web_search_sources_and_citations(
    screen: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    page = screen
    results = [
        {"type": "web_search_result", "url": PARIS, "title": "Paris weather today",
         "encrypted_content": "abc", "page_age": "June 1, 2025"},
        {"type": "web_search_result", "url": "javascript:alert(1)", "title": "Not a link",
         "encrypted_content": "def"},
    ]  # fmt: skip
    citation = {
        "type": "web_search_result_location", "url": PARIS, "title": "Paris weather today",
        "cited_text": "Sunny, 21 °C", "encrypted_index": "ghi",
    }  # fmt: skip
    upstream.script(
        Reply.blocks(
            ToolUse("srvtoolu_1", "web_search", {"query": "Paris weather"}, server=True),
            Whole({"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
                   "content": results}),
            Text(["Paris is sunny today"], citations=(citation,)),
            Text([", so take sunglasses."]),
        )
    )  # fmt: skip
    sign_in(page, server, unique("web"))
    page.on("dialog", lambda d: d.dismiss())
    send(page, "Weather in Paris?")

    def check() -> None:
        answer = assistant(page)
        card = answer.get_by_test_id("tool-call")
        expect(card).to_contain_text("Searched the web for “Paris weather”", timeout=10_000)
        source = card.get_by_role("link", name="Paris weather today")
        expect(source).to_have_attribute("href", PARIS)
        expect(source).to_have_attribute("rel", "noopener noreferrer")
        expect(source).to_have_attribute("target", "_blank")
        expect(source).to_contain_text("example.com")
        expect(card).to_contain_text("Not a link")
        assert card.locator("a[href^='javascript']").count() == 0
        cite = answer.locator(".answer-text sup.cite a")
        expect(cite).to_have_text("[1]")
        expect(cite).to_have_attribute("href", PARIS)
        expect(cite).to_have_attribute("rel", "noopener noreferrer")
        expect(answer.locator(".answer-text")).to_have_text(
            "Paris is sunny today[1], so take sunglasses."
        )

    expect(assistant(page)).to_have_attribute("data-status", "complete", timeout=10_000)
    check()
    assert fits_the_width(page)
    screenshot(page, f"web-search-{page.width_name}")  # type: ignore[attr-defined]
    page.reload()
    check()


def test_the_search_box_finds_your_messages_and_opens_the_conversation(
    screen: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    page = screen
    sign_in(page, server, unique("find"))
    for text in ("A banana bread recipe <b>please</b>", "An apple pie"):
        page.goto(f"{server.base_url}/#/")  # a new chat
        expect(page.locator("#chat-title")).to_have_text("New chat")
        send(page, text)
        expect(assistant(page)).to_have_attribute("data-status", "complete", timeout=10_000)
    open_conversations(page)
    box = page.get_by_role("searchbox", name="Search conversations")
    box.fill("BANANA")
    hits = page.get_by_test_id("search-hit")
    expect(hits.first).to_contain_text("banana bread recipe <b>please</b>", timeout=10_000)
    expect(hits.first.locator("mark").first).to_have_text("banana")
    assert page.locator("#search-results b").count() == 0, "text is never markup"
    expect(page.get_by_test_id("conversations")).to_be_hidden()
    hits.first.click()
    expect(page.locator('[data-testid="message"][data-role="user"]').first).to_contain_text(
        "banana bread", timeout=10_000
    )
    assert fits_the_width(page)
    open_conversations(page)
    box.fill("no such words anywhere")
    expect(page.locator("#search-status")).to_have_text("No messages match.")
    box.press("Escape")
    expect(box).to_have_value("")
    expect(page.get_by_test_id("conversations")).to_be_visible()
