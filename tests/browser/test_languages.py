"""Amharic on the pages: the switch re-renders in Ethiopic script, the choice survives a reload
and is kept on the account, dates also give the Ethiopian calendar, errors are read by code."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect

from astegni.i18n.ethiopian import format_date
from tests.browser.helpers import capture_dialogs, doc_shot, login, switch_to_amharic

pytestmark = pytest.mark.browser


def test_tutor_page_in_amharic_persists_and_reads_errors_by_code(new_page, factory, api):
    tutor = factory.sample_tutor()
    student = factory.user(["student"], first_name="Abebe", father_name="Kebede")
    page = new_page()
    dialogs = capture_dialogs(page)
    url = f"view-tutor.html?id={tutor.role_ids['tutor']}"
    login(page, student, url)
    cards = page.locator(".package-card")
    algebra = cards.filter(has_text="Algebra Basics")
    expect(page.get_by_role("heading", name="Packages")).to_be_visible()
    expect(cards).to_contain_text(["per hour", "per hour"])
    doc_shot(page, "view-tutor-en")

    switch_to_amharic(page)
    expect(page.get_by_role("heading", name="ጥቅሎች")).to_be_visible()
    expect(cards).to_contain_text(["በሰዓት", "በሰዓት"])
    expect(algebra).to_contain_text("ሰኞ")
    expect(page.get_by_role("link", name="መነሻ")).to_be_visible()
    doc_shot(page, "view-tutor-am")
    assert api.get("/api/me", headers=student.headers).json()["locale"] == "am"

    page.reload()
    expect(page.get_by_role("heading", name="ጥቅሎች")).to_be_visible()

    # A request, then the same again: the 409 is read by its code, in Amharic.
    dialog = page.get_by_role("dialog")
    for attempt in range(2):
        algebra.click()
        expect(dialog).to_be_visible()
        dialog.get_by_label("መጀመሪያ ሰዓት").fill("14:00")
        dialog.get_by_label("መጨረሻ ሰዓት").fill("16:00")
        dialog.get_by_role("button", name="ጥያቄ ላክ").click()
        if attempt == 0:
            expect(dialog.get_by_role("heading", name="ጥያቄው ተልኳል")).to_be_visible()
            dialog.get_by_role("button", name="ጨርሻለሁ").click()
        expect(dialog).to_be_hidden()
    assert dialogs == ["⚠️ ጥያቄው አስቀድሞ ተልኳል\n\nለዚህ ጥቅል ምላሽ የሚጠብቅ ጥያቄ አስቀድመው ልከዋል።"]


def test_requests_page_in_amharic_gives_the_ethiopian_date(new_page, factory, api):
    tutor = factory.tutor(packages=1)
    student = factory.user(["student"])
    body = {"tutor_id": tutor.role_ids["tutor"], "package_id": tutor.extra["packages"][0]["id"]}
    body |= {"schedule_type": "recurring", "days": ["Monday"], "start_time": "14:00", "end_time": "15:00"}
    created = api.post("/api/session-requests", json=body, headers=student.headers)
    assert created.status_code == 200, created.text
    page = new_page()
    login(page, student, "requests.html")
    expect(page.get_by_role("heading", name="My requests")).to_be_visible()

    switch_to_amharic(page)
    expect(page.get_by_role("heading", name="የእኔ ጥያቄዎች")).to_be_visible()
    item = page.locator(".request-item")
    expect(item).to_contain_text("በመጠባበቅ ላይ")
    # The browser and this test share the machine's clock and zone.
    expect(item).to_contain_text(format_date(date.today(), "am"))
    expect(page.get_by_role("button", name="ጥያቄውን ሰርዝ")).to_be_visible()

    page.reload()
    expect(page.get_by_role("heading", name="የእኔ ጥያቄዎች")).to_be_visible()
    # Back to English: the switch is kept on the account as well.
    with page.expect_navigation():
        page.locator("#lang-switch").select_option("en")
    expect(page.get_by_role("heading", name="My requests")).to_be_visible()
    assert api.get("/api/me", headers=student.headers).json()["locale"] == "en"


def test_a_language_chosen_before_logging_in_becomes_the_accounts(new_page, factory, api):
    student = factory.user(["student"])
    page = new_page()
    page.goto("/login.html?next=requests.html")
    switch_to_amharic(page)
    expect(page.get_by_role("heading", name="ወደ አስተግኒ ይግቡ")).to_be_visible()
    page.locator("#email").fill(student.email)
    page.locator("#password").fill(student.password)
    page.get_by_role("button", name="ግባ", exact=True).click()
    expect(page.get_by_role("heading", name="የእኔ ጥያቄዎች")).to_be_visible()
    deadline_ok = False
    for _ in range(50):
        if api.get("/api/me", headers=student.headers).json()["locale"] == "am":
            deadline_ok = True
            break
        page.wait_for_timeout(100)
    assert deadline_ok, "the choice made before login never reached the account"
