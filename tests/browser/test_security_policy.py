"""Every page works under its Content-Security-Policy: no violation reported while a page loads
and runs, a visitor sees a tutor's profile without logging in, and /docs renders Swagger UI."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import login, wait_live

pytestmark = pytest.mark.browser

WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""


def watched(new_page: Any) -> tuple[Page, list[str]]:
    """A page that records CSP violations, from the event and from Chromium's console alike."""
    page = new_page()
    page.add_init_script(WATCH)
    console: list[str] = []
    page.on(
        "console",
        lambda message: console.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return page, console


def assert_no_violation(page: Page, console: list[str]) -> None:
    assert page.evaluate("window.__violations") == [], page.url
    assert console == [], page.url


def test_a_visitor_sees_a_tutor_without_logging_in_and_nothing_breaks_the_policy(new_page, factory):
    tutor = factory.tutor(packages=2)
    page, console = watched(new_page)
    for path in ("/", "/index.html", "/login.html"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert_no_violation(page, console)
    page.goto(f"/view-tutor.html?id={tutor.role_ids['tutor']}")
    expect(page.get_by_role("heading", name=tutor.full_name)).to_be_visible()
    expect(page.locator(".package-card")).to_have_count(2)
    assert "login.html" not in page.url
    page.locator(".package-card").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Log in as a student or parent")).to_be_visible()
    expect(dialog.get_by_role("button", name="Send request")).to_be_disabled()
    assert_no_violation(page, console)


def test_logged_in_pages_run_under_the_policy(new_page, factory):
    tutor, student = factory.tutor(packages=1), factory.student()
    page, console = watched(new_page)
    login(page, student, f"view-tutor.html?id={tutor.role_ids['tutor']}")
    expect(page.locator(".package-card")).to_have_count(1)
    page.locator(".package-card").click()
    expect(page.get_by_role("dialog").get_by_role("button", name="Send request")).to_be_enabled()
    page.goto("/inbox.html")
    wait_live(page)  # the WebSocket is allowed by connect-src 'self'
    page.goto("/requests.html")
    page.wait_for_load_state("networkidle")
    assert_no_violation(page, console)


def test_docs_render_under_their_policy(new_page):
    page, console = watched(new_page)
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Astegni")
    expect(page.locator(".opblock-summary-path", has_text="/api/session-requests").first).to_be_visible()
    # Using it works too: an operation tried out against the server.
    page.locator(".opblock-summary", has_text="/healthz").first.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    assert_no_violation(page, console)
