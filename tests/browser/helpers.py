"""Steps shared by the browser tests: log in through the page, screenshots, captured dialogs."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.support.factories import TestUser
from tests.support.live import PROJECT_DIR

SCREENSHOTS = PROJECT_DIR / "test-output" / "screenshots"


def shot(page: Page, name: str, full_page: bool = True) -> None:
    """Keep a picture of the page for people to look at (test-output/screenshots/); a page with
    the modal open is best taken as the viewport (full_page=False), as the modal is fixed."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


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
