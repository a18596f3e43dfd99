"""The page shows what the user's other devices do, without a reload.

"Another device" is the API with the same user's token, or a second browser
context signed in under the same name; the page under test never reloads (a
marker set on its `window` survives to the end of each test).
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import APIRequestContext, Browser, Page, expect

from tests.browser_page import (
    DESKTOP,
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


class Device:
    """The API as another device of the same user sees it."""

    def __init__(self, request: APIRequestContext, server: LiveServer, name: str) -> None:
        self.request = request
        self.base = server.base_url
        signed = request.post(f"{self.base}/auth/dev-token", data={"user": name})
        self.headers = {"Authorization": f"Bearer {signed.json()['token']}"}

    def call(self, method: str, path: str, **body: Any) -> Any:
        response = self.request.fetch(
            self.base + path, method=method, headers=self.headers, data=body or None
        )
        assert response.ok, response.text()
        return response.json() if response.status != 204 else None


def mark(page: Page) -> None:
    page.evaluate("window.__notReloaded = true")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


def test_a_rename_made_elsewhere_shows_in_the_open_pages_sidebar_without_reload(
    page: Page, server: LiveServer
) -> None:
    name = unique("sync")
    sign_in(page, server, name)
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    mark(page)
    other = Device(page.context.request, server, name)

    created = other.call("POST", "/api/conversations", title="Soup")
    row = page.locator(f'[data-testid="conversation"][data-id="{created["id"]}"]')
    expect(row).to_contain_text("Soup")

    other.call("PATCH", f"/api/conversations/{created['id']}", title="Winter soups")
    expect(row).to_contain_text("Winter soups")
    screenshot(page, "sync-renamed-elsewhere")

    row.click()  # open it; a rename elsewhere now also changes the heading
    other.call("PATCH", f"/api/conversations/{created['id']}", title="Soups for winter")
    expect(page.locator("#chat-title")).to_have_text("Soups for winter")

    other.call("DELETE", f"/api/conversations/{created['id']}")
    expect(row).to_have_count(0)
    assert not_reloaded(page)


def test_an_archive_elsewhere_takes_it_out_of_the_list(page: Page, server: LiveServer) -> None:
    name = unique("sync")
    sign_in(page, server, name)
    other = Device(page.context.request, server, name)
    created = other.call("POST", "/api/conversations", title="Old notes")
    row = page.locator(f'[data-testid="conversation"][data-id="{created["id"]}"]')
    expect(row).to_be_visible()
    mark(page)
    other.call("PATCH", f"/api/conversations/{created['id']}", archived=True)
    expect(row).to_have_count(0)
    assert not_reloaded(page)


def test_a_turn_started_on_another_device_streams_into_the_open_conversation(
    page: Page, browser: Browser, server: LiveServer, upstream: FakeAnthropic
) -> None:
    name = unique("sync")
    sign_in(page, server, name)
    upstream.script(Reply.text(["Leek ", "soup."]))
    send(page, "A soup?")
    expect(assistant(page)).to_have_attribute("data-status", "complete")
    mark(page)

    laptop = browser.new_context(viewport=DESKTOP).new_page()
    try:
        sign_in(laptop, server, name)
        laptop.get_by_test_id("conversation").first.click()
        expect(laptop.get_by_test_id("message")).to_have_count(2)
        upstream.script(Reply.text([f"w{i} " for i in range(30)], delay=0.05))
        send(laptop, "And a bread?")

        # The page that only watches shows the new question and the answer as it streams.
        expect(page.get_by_test_id("message")).to_have_count(4)
        expect(assistant(page)).to_have_attribute("data-status", "streaming")
        expect(assistant(page)).to_contain_text("w29", timeout=10_000)
        expect(assistant(page)).to_have_attribute("data-status", "complete")
        assert not_reloaded(page)
    finally:
        laptop.context.close()


def test_a_rename_made_while_the_page_was_offline_shows_once_it_is_back(
    page: Page, server: LiveServer
) -> None:
    """Missed while offline (no push reached it): caught up with /api/sync on the reconnect."""
    name = unique("sync")
    sign_in(page, server, name)
    other = Device(page.context.request, server, name)
    created = other.call("POST", "/api/conversations", title="Before")
    row = page.locator(f'[data-testid="conversation"][data-id="{created["id"]}"]')
    expect(row).to_contain_text("Before")
    mark(page)
    syncs: list[str] = []
    page.on("request", lambda r: syncs.append(r.url) if "/api/sync" in r.url else None)

    page.context.set_offline(True)
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "offline")
    other.call("PATCH", f"/api/conversations/{created['id']}", title="While away")
    gone = other.call("POST", "/api/conversations", title="Deleted while away")
    other.call("DELETE", f"/api/conversations/{gone['id']}")
    page.context.set_offline(False)

    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    expect(row).to_contain_text("While away")
    expect(page.locator(f'[data-id="{gone["id"]}"]')).to_have_count(0)
    assert len(syncs) == 1 and "since=" in syncs[0], syncs
    assert not_reloaded(page)
