"""Fixtures and helpers for the browser tests of the bundled page.

Playwright drives Debian's `chromium` (no browser download); the service runs
as `python -m server` with dev sign-in and the fake model provider, one for
the whole session (each test signs in as a user of its own); Chromium, one per
test module.

Screenshots go to build/screenshots/ (ignored by git). `make screenshots` sets
UPDATE_SCREENSHOTS=1, and then the ones the README shows are also written to
docs/screenshots/: a plain test run changes nothing that git tracks.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.conftest import with_database
from tests.fake_anthropic import FakeAnthropic
from tests.live_server import ROOT, LiveServer, live_server

CHROMIUM = shutil.which("chromium")
SCREENSHOTS = ROOT / "build" / "screenshots"
README_SCREENSHOTS = ROOT / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    with fake.running_in_thread():
        yield fake


@pytest.fixture(scope="session")
def server(
    upstream: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory, mongo_server_uri: str
) -> Iterator[LiveServer]:
    env = {
        "DATA_DIR": str(tmp_path_factory.mktemp("page-data")),
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": upstream.base_url,
        "UPSTREAM_MAX_RETRIES": "0",
        "CHAT_MODELS": "claude-test-large",
        "CHAT_TOOLS": "tests.tools_for_tests",  # get_weather and friends, for tool turns
        "CHECKPOINT_INTERVAL_SECONDS": "0.05",
        "SHUTDOWN_DRAIN_SECONDS": "1",
    }
    if os.environ.get("MONGODB_URI"):
        env["MONGODB_URI"] = with_database(mongo_server_uri, f"page_{uuid.uuid4().hex[:8]}")
    with live_server(env) as running:
        yield running


# Per module, not per session: sync Playwright keeps an event loop running in
# this thread, and later async tests need the thread free of one.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, upstream: FakeAnthropic) -> Iterator[Page]:
    """A desktop-sized page in a fresh context; `page.dialogs` lists alert() texts."""
    upstream.clear()
    context = browser.new_context(viewport=DESKTOP)
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    opened.dialogs = dialogs  # type: ignore[attr-defined]
    yield opened
    context.close()


@pytest.fixture
def phone(browser: Browser, upstream: FakeAnthropic) -> Iterator[Page]:
    """A 390 px touch screen."""
    upstream.clear()
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


@pytest.fixture(params=["desktop", "phone"])
def screen(
    request: pytest.FixtureRequest, browser: Browser, upstream: FakeAnthropic
) -> Iterator[Page]:
    """The `page` at desktop width, then the `phone`: `page.width_name` says which."""
    upstream.clear()
    if request.param == "phone":
        context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    else:
        context = browser.new_context(viewport=DESKTOP)
    opened = context.new_page()
    opened.width_name = request.param  # type: ignore[attr-defined]
    yield opened
    context.close()


def fits_the_width(page: Page) -> bool:
    """Nothing wider than the viewport (no sideways scrolling on a phone)."""
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width <= page.viewport_size["width"] if page.viewport_size else True


def sign_in(page: Page, server: LiveServer, name: str, query: str = "") -> None:
    page.goto(f"{server.base_url}/{query}")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("connection")).to_be_visible()


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def assistant(page: Page) -> Locator:
    return page.locator('[data-testid="message"][data-role="assistant"]').last


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def screenshot(page: Page, name: str, **options: Any) -> None:
    """Save build/screenshots/<name>.png; with UPDATE_SCREENSHOTS=1 also the README's copy."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, README_SCREENSHOTS / path.name)


def wait_until(page: Page, check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a condition only Python can see (requests a route handler
    counted), letting Playwright dispatch events meanwhile."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        page.wait_for_timeout(20)


def attach(page: Page, *files: tuple[str, str, bytes]) -> None:
    """Files chosen in the composer's file picker: (name, media type, bytes) each."""
    page.set_input_files(
        "#attach-input",
        files=[{"name": name, "mimeType": kind, "buffer": data} for name, kind, data in files],
    )
