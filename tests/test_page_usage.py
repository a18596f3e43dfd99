"""The page shows what answers cost (issue 22): a quiet line of tokens and cost under
each answer with cache reads visible, the conversation's total in its header, and
the daily cost budget left, on a service with `COST_PER_USER_PER_DAY_USD` set.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser_page import assistant, needs_chromium, screenshot, send, sign_in, unique
from tests.conftest import with_database
from tests.fake_anthropic import FakeAnthropic
from tests.live_server import LiveServer, live_server
from tests.test_page_sync import Device
from tests.test_prompt_caching import SYSTEM_PROMPT

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def budgeted(
    upstream: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory, mongo_server_uri: str
) -> Iterator[LiveServer]:
    env = {
        "DATA_DIR": str(tmp_path_factory.mktemp("usage-data")),
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": upstream.base_url,
        "UPSTREAM_MAX_RETRIES": "0",
        "CHAT_MODELS": "claude-sonnet-4-5",
        "COST_PER_USER_PER_DAY_USD": "2.50",
        "SHUTDOWN_DRAIN_SECONDS": "1",
    }
    if os.environ.get("MONGODB_URI"):
        env["MONGODB_URI"] = with_database(mongo_server_uri, f"usage_{uuid.uuid4().hex[:8]}")
    with live_server(env) as running:
        yield running


@pytest.mark.screenshot
def test_each_answer_shows_its_tokens_and_cost_and_the_header_the_chats_total(
    page: Page, budgeted: LiveServer
) -> None:
    name = unique("usage")
    sign_in(page, budgeted, name)
    budget = page.get_by_test_id("budget-left")
    expect(budget).to_have_text("$2.50 left today")

    device = Device(page.context.request, budgeted, name)
    created = device.call("POST", "/api/conversations", system_prompt=SYSTEM_PROMPT)
    page.goto(f"{budgeted.base_url}/#/c/{created['id']}")
    total = page.get_by_test_id("chat-usage")
    expect(total).to_be_hidden()  # nothing spent yet

    send(page, "Where is my parcel?")
    first = assistant(page)
    expect(first).to_have_attribute("data-status", "complete")
    line = first.get_by_test_id("usage")
    expect(line).to_have_text(re.compile(r"^[\d,]+ in · \d+ out · \$0\.\d+$"))

    send(page, "And when will it arrive?")
    second = assistant(page)
    expect(second).to_contain_text("Echo: And when will it arrive?")
    expect(second).to_have_attribute("data-status", "complete")
    # The second answer read the first one's prompt from the cache, and says so.
    expect(second.get_by_test_id("usage")).to_have_text(
        re.compile(r"^[\d,]+ in · [\d,]+ cached · \d+ out · \$0\.\d+$")
    )
    expect(total).to_have_text(re.compile(r"^This chat: [\d,]+ in · [\d,]+ cached · \d+ out"))
    # How full the context is: the last answer's tokens against CONTEXT_TOKEN_BUDGET.
    context = page.get_by_test_id("chat-context")
    expect(context).to_have_text(re.compile(r"^\d+% context$"))
    expect(context).to_have_attribute("title", re.compile(r"^[\d,]+ of 100,000 tokens$"))
    expect(budget).to_have_text(re.compile(r"^\$2\.\d+ left today$"))
    expect(budget).not_to_have_text("$2.50 left today")

    # Reloaded from the history: the same line under the stored answer.
    page.reload()
    expect(assistant(page).get_by_test_id("usage")).to_contain_text("cached")
    expect(page.get_by_test_id("chat-usage")).to_contain_text("This chat:")
    expect(page.get_by_test_id("chat-context")).to_have_text(re.compile(r"^\d+% context$"))
    screenshot(page, "usage")
