"""The page's Export / Share menu (issue 24): a Markdown download, a share link opened by
someone who never signed in (a fresh browser context), then revoked from the page."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.browser_page import (
    DESKTOP,
    PHONE,
    assistant,
    attach,
    fits_the_width,
    needs_chromium,
    screenshot,
    send,
    sign_in,
    unique,
)
from tests.fake_anthropic import FakeAnthropic, Reply, Text, ToolUse
from tests.files_for_tests import png
from tests.live_server import LiveServer

pytestmark = needs_chromium
ANSWER = (
    "Two soups for tonight:\n\n| soup | time |\n|---|---|\n| leek and potato | 30 min |\n"
    "| tomato | 20 min |\n\n```python\nprint('stir')\n```\n"
)
HOSTILE = "<img src=x onerror=alert(1)> Soup ideas?"


def menu_item(page: Page, name: str) -> None:
    page.locator("#conv-menu > summary").click()
    page.get_by_role("button", name=name).click()


def test_export_and_share_a_conversation_from_the_page(
    page: Page, browser: Browser, server: LiveServer, upstream: FakeAnthropic, tmp_path: Path
) -> None:
    sign_in(page, server, unique("sharer"))
    upstream.script(
        Reply.blocks(
            Text(["Let me check the weather first. "]),
            ToolUse("toolu_s1", "get_weather", {"location": "Paris"}),
            stop_reason="tool_use",
        ),
        Reply.text([ANSWER]),
    )
    attach(page, ("pot.png", "image/png", png(320, 200, (200, 120, 40))))
    expect(page.get_by_test_id("attachment-tray").locator('[data-status="ready"]')).to_have_count(1)
    send(page, HOSTILE)
    expect(assistant(page)).to_have_attribute("data-status", "complete")

    with page.expect_download() as download:
        menu_item(page, "Export Markdown")
    saved = tmp_path / "export.md"
    download.value.save_as(saved)
    text = saved.read_text()
    assert download.value.suggested_filename.endswith(".md")
    assert "| leek and potato | 30 min |" in text and "```python\nprint('stir')\n```" in text
    assert "<summary>Tool call: get_weather</summary>" in text
    assert (
        f"📎 [pot.png (image/png, 320\N{MULTIPLICATION SIGN}200)]({server.base_url}/api/files/"
        in text
    )

    menu_item(page, "Share link…")
    dialog = page.locator("#share-dialog")
    dialog.get_by_role("button", name="Create link").click()
    link = dialog.locator("[data-url]")
    expect(dialog.get_by_test_id("share-row")).to_have_count(1)
    url = link.input_value()
    screenshot(page, "share-dialog")  # build/screenshots only
    assert url.startswith(f"{server.base_url}/s/")

    # Someone else, never signed in: a fresh context with no token anywhere.
    stranger = browser.new_context(viewport=DESKTOP)
    try:
        reader = stranger.new_page()
        alerts: list[str] = []
        reader.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
        response = reader.goto(url)
        assert response is not None and response.status == 200
        expect(reader.get_by_test_id("shared-title")).to_be_visible()
        expect(reader.locator(".msg-user")).to_contain_text(HOSTILE)  # shown as typed
        expect(reader.locator(".answer table td").first).to_have_text("leek and potato")
        expect(reader.locator(".answer pre code")).to_have_text("print('stir')")
        # The one image is the attachment, through the link, under the page's policy.
        picture = reader.get_by_test_id("shared-attachment").locator("img")
        expect(reader.locator("img")).to_have_count(1)
        expect(picture).to_have_attribute("alt", "pot.png")
        picture.scroll_into_view_if_needed()
        reader.wait_for_function("() => document.querySelector('.shared-image img').naturalWidth")
        assert picture.get_attribute("src", timeout=1000).startswith("/s/") and not alerts
        picture_url = f"{server.base_url}{picture.get_attribute('src')}"
        call = reader.get_by_test_id("tool-call")
        expect(call).to_contain_text("Tool call: get_weather (ok)")
        call.locator("summary").click()  # opened for the picture
        expect(call).to_contain_text("Sunny in Paris")
        screenshot(reader, "share", full_page=True)
        reader.set_viewport_size(PHONE)
        assert fits_the_width(reader)

        dialog.get_by_role("button", name="Revoke").click()
        expect(dialog.locator("[data-status]")).to_contain_text("revoked")
        expect(dialog.get_by_test_id("share-row")).to_have_count(0)
        gone = reader.goto(url)
        assert gone is not None and gone.status == 404
        expect(reader.get_by_role("heading", name="Link not found")).to_be_visible()
        gone = reader.goto(picture_url)  # the attachment went with the link
        assert gone is not None and gone.status == 404
    finally:
        stranger.close()
    page.keyboard.press("Escape")  # the dialog closes; the header holds the menu on a phone
    page.set_viewport_size(PHONE)
    expect(page.locator("#conv-menu > summary")).to_be_visible()
    assert fits_the_width(page)


def test_import_a_conversation_and_an_export_of_everything_from_the_page(
    page: Page, server: LiveServer, upstream: FakeAnthropic, tmp_path: Path
) -> None:
    sign_in(page, server, unique("importer"))
    upstream.script(Reply.text(["Leeks, potatoes, stock."]))
    send(page, "A soup for tonight?")
    expect(assistant(page)).to_have_attribute("data-status", "complete")
    rows = page.get_by_test_id("conversation")
    expect(rows).to_have_count(1)
    with page.expect_download() as download:
        menu_item(page, "Export JSON")
    exported = tmp_path / "soup.json"
    download.value.save_as(exported)
    first_url = page.url

    page.set_input_files("#import-input", str(exported))
    status = page.get_by_test_id("import-status")
    expect(status).to_have_text("Imported 1 conversation.")
    expect(rows).to_have_count(2)
    expect(page).not_to_have_url(first_url)  # the copy is opened
    expect(page.locator(".msg-assistant .msg-body")).to_have_text("Leeks, potatoes, stock.")

    # An export of everything, one line refused: the rest comes in, the line is named.
    document = exported.read_text()
    later = document.replace('"version":1', '"version":2', 1)
    assert later != document
    lines = tmp_path / "conversations.jsonl"
    lines.write_text(f"{document}\n{later}\n")
    page.set_input_files("#import-input", str(lines))
    expect(status).to_contain_text("Imported 1 conversation; not imported: line 2: ")
    expect(status).to_contain_text("version")
    expect(status).to_have_attribute("data-state", "error")
    expect(rows).to_have_count(3)

    not_json = tmp_path / "notes.json"
    not_json.write_text("Leeks\nPotatoes\n")
    page.set_input_files("#import-input", str(not_json))
    expect(status).to_contain_text("notes.json: line 1 is not JSON")
    expect(rows).to_have_count(3)
