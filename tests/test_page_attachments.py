"""The page's attachments (issue 21): attach, see the thumbnail and progress, a refused
file's inline error, send, see the files in the history and open one full size."""

from __future__ import annotations

import base64

import pytest
from playwright.sync_api import Page, expect

from tests import browser_page as browser
from tests.fake_anthropic import CitedText, FakeAnthropic, Reply, Text
from tests.files_for_tests import pdf, png
from tests.live_server import LiveServer

pytestmark = browser.needs_chromium


def attach_send_and_see(page: Page, server: LiveServer, upstream: FakeAnthropic, name: str) -> None:
    browser.sign_in(page, server, browser.unique(name))
    camera = page.locator("label.camera")  # a phone's camera, straight from the composer
    expect(camera).to_be_visible() if name == "phone" else expect(camera).to_be_hidden()
    expect(camera.locator("input")).to_have_attribute("capture", "environment")
    browser.attach(
        page,
        ("hinge.png", "image/png", png(1200, 900, (40, 110, 190))),
        ("lease.pdf", "application/pdf", pdf(3)),
        ("setup.png", "image/png", b"MZ\x90\x00" + bytes(300)),  # an executable, renamed
    )
    tray = page.get_by_test_id("attachment-tray")
    expect(tray.locator('[data-status="ready"]')).to_have_count(2)
    expect(tray.locator('[data-status="error"]')).to_contain_text("Only PNG, JPEG, GIF and WebP")
    expect(tray.locator('[data-status="ready"]').nth(1)).to_contain_text("lease.pdf3 pages")
    page.get_by_label("Message", exact=True).fill("Can this hinge be fixed?")
    if name == "phone":  # the tray: thumbnails, a PDF chip, a refused file's error
        browser.screenshot(page, "attachments-phone")

    browser.send(page, "Can this hinge be fixed?")

    expect(browser.assistant(page)).to_have_attribute("data-status", "complete")
    expect(tray).to_be_hidden()
    question = page.locator('[data-testid="message"][data-role="user"]').last
    files = question.get_by_test_id("history-attachment")
    expect(files).to_have_count(2)
    expect(files.nth(1)).to_contain_text("lease.pdf · 3 pages")
    content = upstream.requests[-1].sent["messages"][-1]["content"]
    assert [block["type"] for block in content] == ["image", "document", "text"]
    assert browser.fits_the_width(page)
    if name == "desktop":
        loaded = "() => [...document.querySelectorAll('.msg-files img')].some(i => i.naturalWidth)"
        page.wait_for_function(loaded)
        browser.screenshot(page, "attachments")


@pytest.mark.screenshot
def test_attach_an_image_and_a_pdf_send_and_open_it_full_size(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    attach_send_and_see(page, server, upstream, "desktop")
    # Editing the question keeps its files: the new question is sent with them.
    asked = page.locator('[data-testid="message"][data-role="user"]').last
    asked.hover()
    asked.get_by_role("button", name="Edit this message").click()
    page.get_by_label("Edit your message").fill("Can it be welded?")
    page.get_by_role("button", name="Save and send").click()
    expect(browser.assistant(page)).to_contain_text("Can it be welded?")
    expect(browser.assistant(page)).to_have_attribute("data-status", "complete")
    content = upstream.requests[-1].sent["messages"][-1]["content"]
    assert [block["type"] for block in content] == ["image", "document", "text"], content
    edited = page.locator('[data-testid="message"][data-role="user"]').last
    expect(edited.get_by_test_id("history-attachment")).to_have_count(2)

    page.reload()  # the history as stored: thumbnails fetched with the token
    question = page.locator('[data-testid="message"][data-role="user"]').last
    loaded = "() => [...document.querySelectorAll('.msg-files img')].some(i => i.naturalWidth > 0)"
    page.wait_for_function(loaded)
    question.get_by_test_id("history-attachment").first.click()
    viewer = page.get_by_test_id("image-viewer")
    expect(viewer).to_be_visible()
    assert viewer.locator("img").evaluate("i => i.naturalWidth") == 1200
    viewer.get_by_role("button", name="Close").click()

    # A pasted and a dropped image join the tray; its x button takes one out.
    for event in ("paste", "drop"):
        page.evaluate(GIVE_A_FILE, [event, base64.b64encode(png(2, 2)).decode()])
    tray = page.get_by_test_id("attachment-tray")
    expect(tray.locator('[data-status="ready"]')).to_have_count(2)
    tray.get_by_role("button", name="Remove pasted.png").click()
    expect(tray.locator('[data-status="ready"]')).to_have_count(1)

    # An answer citing a page of the PDF names the document and the page.
    cited = {"type": "page_location", "cited_text": "Two years.", "document_index": 0}
    cited |= {"document_title": "lease.pdf", "start_page_number": 2, "end_page_number": 3}
    upstream.script(
        Reply.blocks(
            CitedText([cited], ["The term is two years."]),
            Text([" It renews", " unless", " either side", " objects."], delay=0.5),
        )
    )
    browser.send(page, "How long is the lease?")
    answer = browser.assistant(page)
    # Shown while the answer streams (turn.citation), then where the stored blocks put it.
    expect(answer.locator("sup.cite")).to_have_attribute("title", "lease.pdf, p. 2")
    assert answer.get_attribute("data-status") == "streaming"
    expect(answer).to_have_attribute("data-status", "complete")
    expect(answer.locator("sup.cite")).to_have_count(1)
    cited_here = "n => n.closest('.msg-body').textContent.indexOf(n.textContent)"
    position = answer.locator("sup.cite").evaluate(cited_here)
    assert position == len("The term is two years."), answer.locator(".msg-body").inner_html()


# A PNG handed to the composer as a clipboard paste or a drop of a file.
GIVE_A_FILE = """([event, png]) => {
  const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
  const name = `${event === "paste" ? "pasted" : "dropped"}.png`;
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "image/png" }));
  const target = document.getElementById(event === "paste" ? "composer-input" : "composer");
  target.dispatchEvent(event === "paste"
    ? new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true })
    : new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
}"""


@pytest.mark.screenshot
def test_attachments_on_a_phone(phone: Page, server: LiveServer, upstream: FakeAnthropic) -> None:
    attach_send_and_see(phone, server, upstream, "phone")
