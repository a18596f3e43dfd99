"""The page as a person expects it (issue 7): Markdown answers, whole model
names, the offline model explained, quiet sidebar rows with their last
activity, and a phone layout with a closable drawer and no keyboard hint.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser_page import PHONE, assistant, needs_chromium, screenshot, send, sign_in, unique
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.live_server import LiveServer

pytestmark = needs_chromium

MARKDOWN_CHUNKS = [
    "## Release plan\n\nThe steps, in order:\n\n",
    "1. Build the image\n2. Run the **tests**\n3. Ship it\n\n",
    "### Checks\n\n- lint\n- types\n- `make test`\n\n",
    "| Step | Time |\n|:-----|-----:|\n",
    "| build | 2 min |\n| test | 90 s |\n\n",
    "```bash\nmake test\n",
    "make screenshots\n```\n\nAll done.",
]
LONG_MODELS = ["claude-sonnet-4-5-20250929", "claude-3-5-haiku-20241022"]


def models_answer(models: list[str]) -> Callable[[Route], None]:
    """GET /api/models as a service with these models would answer it."""
    body = json.dumps({"models": models, "default": models[0]})
    return lambda route: route.fulfill(status=200, content_type="application/json", body=body)


def new_conversation(page: Page, text: str) -> None:
    page.get_by_role("button", name="New chat").click()
    send(page, text)
    expect(assistant(page)).to_have_attribute("data-status", "complete")


@pytest.mark.screenshot
def test_a_markdown_answer_streams_into_headings_lists_a_table_and_code(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    page.emulate_media(color_scheme="dark")
    upstream.script(Reply.text(MARKDOWN_CHUNKS, delay=0.15))
    sign_in(page, server, unique("md"))
    send(page, "Plan the release")
    answer = assistant(page)
    body = answer.locator(".msg-body")
    # Drawn as it streams, not only at the end.
    expect(body.locator("h2")).to_have_text("Release plan")
    expect(answer).to_have_attribute("data-status", "streaming")
    expect(answer).to_have_attribute("data-status", "complete", timeout=10_000)

    expect(body.locator("h3")).to_have_text("Checks")
    expect(body.locator("ol > li")).to_have_text(["Build the image", "Run the tests", "Ship it"])
    expect(body.locator("ol strong")).to_have_text("tests")
    expect(body.locator("ul > li")).to_have_text(["lint", "types", "make test"])
    expect(body.locator("table th")).to_have_text(["Step", "Time"])
    expect(body.locator("table td")).to_have_text(["build", "2 min", "test", "90 s"])
    expect(body.locator("table td").nth(1)).to_have_css("text-align", "right")
    expect(body.locator("pre code")).to_have_text("make test\nmake screenshots")
    expect(body.locator("p").last).to_have_text("All done.")

    copy = answer.get_by_role("button", name="Copy code")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "make test\nmake screenshots"
    expect(page.locator("#chat-title")).to_have_text("Fake title")
    screenshot(page, "markdown")


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_the_model_picker_shows_whole_names(page: Page, server: LiveServer, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    page.route("**/api/models", models_answer(LONG_MODELS))
    sign_in(page, server, unique("mp"))
    picker = page.get_by_label("Model", exact=True)
    expect(picker).to_be_visible()
    for model in LONG_MODELS:
        picker.select_option(model)
        room, needed = picker.evaluate("""(select) => {
            const probe = document.createElement("span");
            probe.style.font = getComputedStyle(select).font;
            probe.style.whiteSpace = "pre";
            probe.textContent = select.value;
            document.body.append(probe);
            const needed = probe.getBoundingClientRect().width;
            probe.remove();
            const style = getComputedStyle(select);
            const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
            return [select.clientWidth - padding, needed];
        }""")
        assert room >= needed + 16, f"{model}: {needed:.0f}px of text in {room:.0f}px"  # + arrow
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_the_offline_model_says_what_it_is_and_how_to_reach_claude(
    page: Page, server: LiveServer
) -> None:
    page.route("**/api/models", models_answer(["offline"]))
    sign_in(page, server, unique("off"))
    note = page.get_by_role("note")
    expect(note).to_contain_text("Offline model")
    expect(note).to_contain_text("without Claude")
    expect(note).to_contain_text("set ANTHROPIC_API_KEY and restart the service")
    expect(page.locator("#model-name")).to_have_text("Offline model (not Claude)")
    expect(page.get_by_label("Model", exact=True)).to_be_hidden()


def test_a_claude_service_shows_no_offline_note(page: Page, server: LiveServer) -> None:
    sign_in(page, server, unique("on"))
    expect(page.locator("#model-name")).to_have_text("claude-test-large")
    expect(page.get_by_role("note")).to_be_hidden()


def test_row_actions_show_on_hover_or_keyboard_focus_and_rows_show_last_activity(
    page: Page, server: LiveServer
) -> None:
    page.clock.install()
    sign_in(page, server, unique("ra"))
    new_conversation(page, "first")
    new_conversation(page, "second")
    rows = page.get_by_test_id("conversation")
    expect(rows).to_have_count(2)
    row = rows.last
    rename = row.get_by_role("button", name="Rename")
    expect(rename).to_be_hidden()
    expect(row.get_by_role("button", name="More actions")).to_be_hidden()  # touch only

    row.hover()
    expect(rename).to_be_visible()
    expect(row.get_by_role("button", name="Delete")).to_be_visible()
    page.locator("#chat-title").hover()
    expect(rename).to_be_hidden()

    row.get_by_role("link").focus()
    expect(rename).to_be_visible()
    page.keyboard.press("Tab")  # the menu-less "More actions" button is not in the way
    expect(rename).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Conversation title")).to_be_focused()
    page.keyboard.press("Escape")

    when = row.locator("time")
    expect(when).to_have_text("just now")
    stamp = when.get_attribute("datetime") or ""
    assert stamp.endswith("Z") and "T" in stamp, stamp
    assert when.get_attribute("title"), "the exact time is in the title"
    page.clock.fast_forward("05:00")
    expect(when).to_have_text("5 min ago")


def test_on_a_touch_screen_row_actions_are_in_a_menu(
    phone: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    sign_in(phone, server, unique("tm"))
    send(phone, "hello")
    expect(assistant(phone)).to_have_attribute("data-status", "complete")
    phone.get_by_role("button", name="Conversations").tap()
    row = phone.get_by_test_id("conversation").first
    expect(row).to_be_visible()
    expect(row.get_by_role("button", name="Rename")).to_be_hidden()
    more = row.get_by_role("button", name="More actions")
    more.tap()
    expect(more).to_have_attribute("aria-expanded", "true")
    for action in ("Rename", "Archive", "Delete"):
        expect(row.get_by_role("button", name=action)).to_be_visible()
    expect(row.get_by_role("button", name="Rename")).to_have_text("Rename")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "phone-menu")
    row.get_by_role("button", name="Rename").tap()
    expect(phone.get_by_label("Conversation title")).to_be_visible()


def test_the_phone_drawer_has_a_close_button_and_no_keyboard_hint(
    phone: Page, server: LiveServer
) -> None:
    sign_in(phone, server, unique("dr"))
    expect(phone.locator(".empty-state")).to_contain_text("Ask anything.")
    expect(phone.locator(".keyboard-hint")).to_be_hidden()
    toggle = phone.get_by_role("button", name="Conversations")
    toggle.tap()
    sidebar = phone.get_by_role("navigation", name="Conversations")
    expect(sidebar).to_be_visible()
    phone.get_by_role("button", name="Close conversations").tap()
    expect(sidebar).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()


def test_the_desktop_keeps_the_keyboard_hint_and_needs_no_close_button(
    page: Page, server: LiveServer
) -> None:
    sign_in(page, server, unique("dk"))
    expect(page.locator(".keyboard-hint")).to_be_visible()
    expect(page.get_by_role("button", name="Close conversations")).to_be_hidden()
