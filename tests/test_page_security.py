"""The page under its Content-Security-Policy: it works, and the browser reports no violation.

A violation would mean the policy blocks something the page needs (so a feature
broke silently) or the page grew an inline script or style the policy forbids.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser_page import assistant, needs_chromium, send, sign_in, unique
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.live_server import LiveServer

pytestmark = needs_chromium

# Registered before any of the page's own scripts: every violation, as the browser reports it.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_the_page_runs_under_its_policy_without_a_violation(
    page: Page, server: LiveServer, upstream: FakeAnthropic
) -> None:
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(RECORD_VIOLATIONS)
    upstream.script(
        Reply.text(["Under ", "a **strict** ", "policy.\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n"])
    )

    response = page.goto(f"{server.base_url}/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"

    sign_in(page, server, unique("csp"))
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    send(page, "Does it work?")
    expect(assistant(page)).to_contain_text("Under a strict policy.")
    expect(assistant(page).locator("table")).to_be_visible()

    # The import map was applied (allowed by its hash): modules load by their versioned URL.
    versioned = page.evaluate(
        "performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/static/chat.js'))"
    )
    assert versioned and all("?v=" in name for name in versioned), versioned
    assert page.evaluate("window.__violations") == []
    assert not [text for text in console if "Content Security Policy" in text], console
