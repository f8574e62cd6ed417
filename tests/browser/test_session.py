"""The pages' session: logging out revokes the login on the server, not only in the browser."""

from __future__ import annotations

import pytest

from tests.browser.helpers import login

pytestmark = pytest.mark.browser


def test_log_out_revokes_the_refresh_token(page, factory, api):
    user = factory.student()
    login(page, user, "inbox.html")
    refresh_token = page.evaluate("localStorage.getItem('refresh_token')")
    assert refresh_token
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login.html")
    assert page.evaluate("localStorage.getItem('refresh_token')") is None
    assert api.post("/api/refresh", json={"refresh_token": refresh_token}).status_code == 401
