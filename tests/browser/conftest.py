"""Browser tests: Debian's Chromium driven by Playwright against a live `python app.py`.

One browser, one server and one database per session, a fresh browser context per page; a
screenshot of every open page on failure.
Skipped, with the reason shown, only where /usr/bin/chromium does not exist.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from astegni.core.database import Database
from tests import pg
from tests.browser.helpers import SCREENSHOTS
from tests.support.factories import Factory
from tests.support.live import LiveServer

# Debian's Chromium; CHROMIUM_PATH points elsewhere (and lets the skip be tried).
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Keep each phase's report on the test item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def browser_db_url(pg_url: str, template_db: str) -> Iterator[str]:
    """One database for the browser session: every test makes its own users, so they share it."""
    with pg.scratch_database(pg_url, template_db) as url:
        yield url


@pytest.fixture(scope="session")
def live_server(browser: Any, browser_db_url: str) -> Iterator[LiveServer]:
    """One `python app.py` for all browser tests (starting one per test cost seconds each)."""
    server = LiveServer(browser_db_url)
    yield server
    server.stop()


@pytest.fixture
def db(browser_db_url: str) -> Iterator[Database]:
    database = Database(browser_db_url, pool_size=2)
    yield database
    database.close()


@pytest.fixture
def new_page(browser: Any, live_server: LiveServer, request: pytest.FixtureRequest) -> Iterator[Callable]:
    """new_page(viewport=DESKTOP) -> a page in a fresh browser context on the live server.

    JavaScript errors on any page fail the test; on failure every open page is photographed.
    """
    contexts: list[Any] = []
    js_errors: list[str] = []

    def make(viewport: dict[str, int] | None = None) -> Any:
        context = browser.new_context(viewport=viewport or DESKTOP, base_url=live_server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: js_errors.append(f"{page.url}: {error}"))
        return page

    yield make
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for i, context in enumerate(contexts):
            for j, page in enumerate(context.pages):
                name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
                page.screenshot(path=str(SCREENSHOTS / f"FAILED-{name}-{i}-{j}.png"), full_page=True)
    for context in contexts:
        context.close()
    if report is not None and report.passed:
        assert not js_errors, f"JavaScript errors: {js_errors}"


@pytest.fixture
def page(new_page: Callable) -> Any:
    return new_page()


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=15) as client:
        yield client


@pytest.fixture
def factory(api: httpx.Client, db: Database) -> Factory:
    """Users through the live server's API, packages and family links through SQL."""
    return Factory(api, db)
