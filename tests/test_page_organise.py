"""The sidebar files conversations (issue 24): grouped by project with pinned on top, filtered by
project or tag, pinned, tagged and moved from a row's menu, archived and unarchived, walked with
the keyboard; on a phone the same actions sit in the row's menu."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser_page import PHONE, needs_chromium, screenshot, sign_in, unique
from tests.live_server import LiveServer

pytestmark = needs_chromium


def call(page: Page, server: LiveServer, user: str, method: str, path: str, **body: Any) -> Any:
    """Through the API, as another device of the same user would."""
    token = page.request.post(f"{server.base_url}/auth/dev-token", data={"user": user}).json()
    response = page.request.fetch(
        server.base_url + path,
        method=method,
        data=body,
        headers={"Authorization": f"Bearer {token['token']}"},
    )
    assert response.ok, response.text()
    return response.json()


def create(page: Page, server: LiveServer, user: str, **body: Any) -> dict[str, Any]:
    created: dict[str, Any] = call(page, server, user, "POST", "/api/conversations", **body)
    return created


def titles(page: Page) -> list[str]:
    return page.get_by_test_id("conversation").locator(".conv-title").all_inner_texts()


def act(page: Page, title: str, action: str) -> None:
    row = page.get_by_test_id("conversation").filter(has_text=title)
    row.hover()
    row.get_by_role("button", name=action, exact=True).click()


@pytest.mark.screenshot
def test_projects_tags_pins_and_the_archived_view_on_the_page(
    page: Page, server: LiveServer
) -> None:
    user = unique("org")
    sign_in(page, server, user)
    soup = create(page, server, user, title="Soup", project="Kitchen", tags=["winter"])
    create(page, server, user, title="Bread", project="Kitchen", tags=["baking"])
    create(page, server, user, title="Trip", project="Travel", tags=["summer"])
    page.reload()
    expect(page.get_by_test_id("conversation")).to_have_count(3)
    assert titles(page) == ["Trip", "Bread", "Soup"]
    groups = page.locator(".conv-group-title")
    expect(groups).to_have_text(["Travel", "Kitchen"])

    page.get_by_label("Project", exact=True).select_option("Kitchen")
    expect(page.get_by_test_id("conversation")).to_have_count(2)
    assert titles(page) == ["Bread", "Soup"]
    page.get_by_label("Project", exact=True).select_option("")
    page.get_by_label("Tag", exact=True).select_option("summer")
    expect(page.get_by_test_id("conversation")).to_have_count(1)
    expect(page.get_by_test_id("conversation")).to_contain_text("#summer")
    page.get_by_label("Tag", exact=True).select_option("")
    expect(page.get_by_test_id("conversation")).to_have_count(3)

    act(page, "Soup", "Pin")
    expect(groups).to_have_text(["Pinned", "Travel", "Kitchen"])
    assert titles(page) == ["Soup", "Trip", "Bread"]
    page.reload()  # as stored: pinned first
    expect(groups).to_have_text(["Pinned", "Travel", "Kitchen"])
    assert titles(page) == ["Soup", "Trip", "Bread"]

    act(page, "Trip", "Tags")
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Tags, separated by commas").fill("Summer, Road  Trip")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("conversation").filter(has_text="Trip")).to_contain_text(
        "#road trip #summer"
    )
    act(page, "Bread", "Move to project")
    page.get_by_role("dialog").get_by_label("Project (empty: none)").fill("Travel")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(groups).to_have_text(["Pinned", "Travel"])
    expect(page.get_by_label("Tag", exact=True).locator("option")).to_contain_text(
        ["Tags", "baking (1)"]
    )

    # ↑/↓ walk the rows across groups; Enter opens one.
    page.get_by_test_id("conversation").first.get_by_role("link").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    expect(page.locator("#chat-title")).to_have_text(titles(page)[1])
    expect(page.get_by_test_id("conversation").nth(1)).to_have_class("conv current")
    page.get_by_label("Message", exact=True).focus()
    page.get_by_test_id("conversation").filter(has_text="Bread").hover()  # its actions show
    screenshot(page, "projects")

    # Filed on another device: shown here at once, without a reload.
    bread = page.get_by_test_id("conversation").filter(has_text="Bread")
    call(page, server, user, "PATCH", f"/api/conversations/{bread.get_attribute('data-id')}",
         pinned=True, tags=["Sourdough"])  # fmt: skip
    expect(bread).to_contain_text("#sourdough")
    assert titles(page)[:2] == ["Bread", "Soup"]

    act(page, "Trip", "Archive")
    expect(page.get_by_test_id("conversation")).to_have_count(2)
    page.get_by_role("button", name="Archived").click()
    expect(page.get_by_role("heading", name="Archived conversations")).to_be_visible()
    expect(page.get_by_test_id("conversation")).to_have_count(1)
    act(page, "Trip", "Unarchive")
    expect(page.get_by_test_id("conversation")).to_have_count(0)
    expect(page.locator("#conversations-status")).to_have_text("No archived conversations.")
    page.get_by_role("button", name="Archived").click()
    expect(page.get_by_test_id("conversation")).to_have_count(3)
    assert titles(page)[1] == soup["title"]

    # "No project": the conversations in none (Soup, taken out of Kitchen elsewhere).
    call(page, server, user, "PATCH", f"/api/conversations/{soup['id']}", project="")
    page.get_by_label("Project", exact=True).select_option("No project")
    expect(page.get_by_test_id("conversation")).to_have_count(1)
    assert titles(page) == ["Soup"]


def test_on_a_phone_the_filing_actions_are_in_the_row_menu(phone: Page, server: LiveServer) -> None:
    user = unique("orgp")
    sign_in(phone, server, user)
    create(phone, server, user, title="Soup", project="Kitchen", tags=["winter"])
    phone.reload()
    phone.get_by_role("button", name="Conversations").tap()
    row = phone.get_by_test_id("conversation").first
    row.get_by_role("button", name="More actions").tap()
    for action in ("Rename", "Pin", "Tags", "Move to project", "Archive", "Delete"):
        expect(row.get_by_role("button", name=action, exact=True)).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "projects-phone")
    row.get_by_role("button", name="Pin", exact=True).tap()
    expect(phone.locator(".conv-group-title")).to_have_count(1)
    expect(row.locator(".conv-pin")).to_have_attribute("title", "Unpin")  # the menu closed
