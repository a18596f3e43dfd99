"""The page for conversations as trees (issue 19): edit a question, regenerate an answer,
switch between versions with "< 2/2 >", rate an answer, copy it; on a laptop and a phone.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser_page import (
    assistant,
    fits_the_width,
    needs_chromium,
    screenshot,
    send,
    sign_in,
    unique,
    wait_until,
)
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.live_server import LiveServer

pytestmark = needs_chromium
MIN_TARGET_PX = 40


def messages(page: Page) -> Locator:
    return page.get_by_test_id("message")


def question(page: Page, index: int) -> Locator:
    return page.locator('[data-testid="message"][data-role="user"]').nth(index)


def contents(page: Page) -> list[str]:
    return [text.strip() for text in messages(page).locator(".msg-body").all_inner_texts()]


def sent_to_model(upstream: FakeAnthropic) -> list[str]:
    return [
        m["content"] if isinstance(m["content"], str) else ""
        for m in upstream.requests[-1].sent["messages"]
    ]


def two_exchanges(page: Page, server: LiveServer, name: str) -> None:
    sign_in(page, server, unique(name))
    send(page, "Soup for tonight?")
    expect(assistant(page)).to_have_attribute("data-status", "complete")
    send(page, "With leeks?")
    expect(assistant(page)).to_contain_text("Echo: With leeks?")
    expect(assistant(page)).to_have_attribute("data-status", "complete")


def stored_messages(page: Page, server: LiveServer) -> list[dict[str, Any]]:
    """The current branch as the service has it, read with the page's own token."""
    token = page.evaluate("JSON.parse(sessionStorage.getItem('chat.token'))")
    conversation = page.evaluate("decodeURIComponent(location.hash.split('/').pop())")
    request = urllib.request.Request(
        f"{server.base_url}/api/conversations/{conversation}/messages",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        items: list[dict[str, Any]] = json.load(response)["items"]
        return items


def test_edit_a_question_then_switch_back(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    two_exchanges(page, server, "edit")

    question(page, 1).hover()
    question(page, 1).get_by_role("button", name="Edit this message").click()
    editor = page.get_by_label("Edit your message")
    expect(editor).to_have_value("With leeks?")
    editor.fill("With potatoes?")
    page.get_by_role("button", name="Save and send").click()

    expect(assistant(page)).to_contain_text("Echo: With potatoes?")
    # The model read the first exchange and the edited question, never the original.
    assert sent_to_model(upstream) == [
        "Soup for tonight?",
        "Echo: Soup for tonight?",
        "With potatoes?",
    ]
    versions = question(page, 1).locator(".siblings")
    expect(versions.locator(".sibling-count")).to_have_text("2/2")
    expect(versions.get_by_role("button", name="Next version")).to_be_disabled()

    versions.get_by_role("button", name="Previous version").click()
    expect(question(page, 1).locator(".sibling-count")).to_have_text("1/2")
    expect(assistant(page)).to_contain_text("Echo: With leeks?")
    assert contents(page) == [
        "Soup for tonight?", "Echo: Soup for tonight?", "With leeks?", "Echo: With leeks?",
    ]  # fmt: skip
    page.reload()
    expect(assistant(page)).to_contain_text("Echo: With leeks?")  # the switch is the service's


def test_regenerate_an_answer_and_rate_it(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    two_exchanges(page, server, "regen")
    upstream.script(Reply.text(["Leeks ", "and ", "cream."]))

    assistant(page).get_by_role("button", name="Regenerate this answer").click()

    expect(assistant(page)).to_contain_text("Leeks and cream.")
    expect(assistant(page).locator(".sibling-count")).to_have_text("2/2")
    assert len(page.locator('[data-role="user"]').all()) == 2  # no new question
    assert sent_to_model(upstream)[-1] == "With leeks?"

    up = assistant(page).get_by_role("button", name="Good answer")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    down = assistant(page).get_by_role("button", name="Bad answer")
    down.click()
    page.get_by_label("What was wrong with this answer (optional)").fill("Too much cream.")
    assistant(page).get_by_role("button", name="Send", exact=True).click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    wait_until(
        page, lambda: (stored_messages(page, server)[-1]["feedback"] or {}).get("rating") == "down"
    )
    assert stored_messages(page, server)[-1]["feedback"]["comment"] == "Too much cream."

    page.reload()
    expect(assistant(page).get_by_role("button", name="Bad answer")).to_have_attribute(
        "aria-pressed", "true"
    )
    assistant(page).get_by_role("button", name="Bad answer").click()  # again: cleared
    expect(assistant(page).get_by_role("button", name="Bad answer")).to_have_attribute(
        "aria-pressed", "false"
    )
    wait_until(page, lambda: stored_messages(page, server)[-1]["feedback"] is None)


def test_copy_an_answer_and_edit_the_last_question_with_arrow_up(
    page: Page, server: LiveServer
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    two_exchanges(page, server, "copy")

    copy = assistant(page).get_by_role("button", name="Copy the answer")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "Echo: With leeks?"

    box = page.get_by_label("Message", exact=True)
    box.click()
    box.press("ArrowUp")
    editor = page.get_by_label("Edit your message")
    expect(editor).to_have_value("With leeks?")
    editor.press("Escape")
    expect(editor).to_have_count(0)
    expect(question(page, 1).locator(".msg-body")).to_have_text("With leeks?")


@pytest.mark.screenshot
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_versions_and_ratings_on_a_laptop_and_a_phone(
    page: Page, server: LiveServer, upstream: FakeAnthropic, size: str
) -> None:
    if size == "phone":
        page.set_viewport_size({"width": 390, "height": 844})
    two_exchanges(page, server, f"shots-{size}")
    upstream.script(Reply.text(["Leeks, ", "potatoes ", "and a little ", "cream: a classic."]))
    assistant(page).get_by_role("button", name="Regenerate this answer").click()
    expect(assistant(page).locator(".sibling-count")).to_have_text("2/2")
    assistant(page).get_by_role("button", name="Good answer").click()
    expect(assistant(page).get_by_role("button", name="Good answer")).to_have_attribute(
        "aria-pressed", "true"
    )

    for tool in assistant(page).locator(".msg-tools button").all():
        box = tool.bounding_box()
        assert (
            box is not None and box["width"] >= MIN_TARGET_PX and box["height"] >= MIN_TARGET_PX
        ), (
            tool.get_attribute("aria-label"),
            box,
        )
    assert fits_the_width(page)
    screenshot(page, "branches" if size == "desktop" else "branches-phone")
