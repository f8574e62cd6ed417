"""Steps shared by the browser tests: log in through the page, screenshots, captured dialogs,
the language switch, and the package modal of view-tutor.html."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.support.factories import TestUser
from tests.support.live import PROJECT_DIR

SCREENSHOTS = PROJECT_DIR / "test-output" / "screenshots"
DOCS_SCREENSHOTS = PROJECT_DIR / "docs" / "screenshots"
# The alert of a request for a package the caller already has a pending request for.
DUPLICATE = re.compile(
    r"Request already sent\. You have a pending request for this package "
    r"\(Request ID: (\d+), sent on [A-Z][a-z]+ \d{1,2}, \d{4}\)\. Please wait for the tutor's response\."
)


def shot(page: Page, name: str, full_page: bool = True) -> None:
    """Keep a picture of the page for people to look at (test-output/screenshots/); a page with
    the modal open is best taken as the viewport (full_page=False), as the modal is fixed."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def doc_shot(page: Page, name: str) -> None:
    """The whole page as a picture in the documentation (docs/screenshots/, kept in git)."""
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"), full_page=True)


def login(page: Page, user: TestUser, next_page: str = "index.html", role: str | None = None) -> None:
    """Log in through login.html and land on next_page (choosing `role` if asked for one)."""
    page.goto(f"/login.html?next={next_page}")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in", exact=True).click()
    if len(user.roles) > 1:
        expect(page.get_by_role("heading", name="Continue as")).to_be_visible()
        page.get_by_label(role or user.roles[0], exact=True).check()
        page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"**/{next_page}")


def capture_dialogs(page: Page) -> list[str]:
    """Accept every alert/confirm of the page and return the list their messages go into."""
    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    return messages


def wait_live(page: Page) -> None:
    """Wait until the page's WebSocket is open, so that no event is missed."""
    page.wait_for_selector("body[data-live='connected']", state="attached")


def switch_to_amharic(page: Page) -> None:
    with page.expect_navigation():
        page.locator("#lang-switch").select_option("am")
    expect(page.locator("html")).to_have_attribute("lang", "am")


def open_package(page: Page, name: str) -> Any:
    """Click the package's card and return its request dialog, once open."""
    page.locator(".package-card", has_text=name).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name=name)).to_be_visible()
    return dialog


def fill_recurring(dialog: Any, days: list[str], start: str, end: str) -> None:
    dialog.get_by_label("Weekly (recurring days)").check()
    for box in dialog.locator("input[name='days']").all():
        box.uncheck()
    for day in days:
        dialog.get_by_label(day, exact=True).check()
    dialog.get_by_label("Start time").fill(start)
    dialog.get_by_label("End time").fill(end)


def duplicate_request_id(dialogs: list[str]) -> int:
    """The request id the one alert of a duplicate request names."""
    assert len(dialogs) == 1, dialogs
    title, _, detail = dialogs[0].partition("\n\n")
    assert title == "⚠️ Request Already Sent"
    match = DUPLICATE.fullmatch(detail)
    assert match, detail
    return int(match.group(1))
