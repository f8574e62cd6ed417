"""view-tutor.html: the package modal and submitPackageRequest(), as students and parents use it."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    capture_dialogs,
    duplicate_request_id,
    fill_recurring,
    login,
    open_package,
    shot,
)
from tests.support.factories import TestUser

pytestmark = pytest.mark.browser


def my_requests(api, user: TestUser) -> list[dict]:
    response = api.get("/api/session-requests/my-requests", headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_student_requests_a_package_then_a_duplicate_then_another_package(new_page, factory, api):
    tutor = factory.sample_tutor()
    algebra, physics = tutor.extra["packages"]
    student = factory.user(["student"], first_name="Abebe", father_name="Kebede")
    page = new_page()
    dialogs = capture_dialogs(page)

    page.goto("/index.html")
    expect(page.get_by_role("heading", name="Learn with the right tutor.")).to_be_visible()
    shot(page, "index-logged-out")
    page.goto(f"/login.html?next=view-tutor.html?id={tutor.role_ids['tutor']}")
    shot(page, "login")
    login(page, student, f"view-tutor.html?id={tutor.role_ids['tutor']}")
    expect(page.get_by_role("heading", name="Selam Bekele", level=1)).to_be_visible()
    expect(page.locator(".package-card")).to_have_count(2)
    expect(page.locator(".package-card", has_text="Algebra Basics")).to_contain_text("ETB 250.00")
    shot(page, "view-tutor")

    # 1. the first request: the modal shows the package, prefilled with its schedule
    dialog = open_package(page, "Algebra Basics")
    expect(dialog.locator("#package-facts")).to_contain_text("ETB 250.00 per hour")
    expect(dialog.get_by_label("Monday", exact=True)).to_be_checked()
    expect(dialog.get_by_label("Start time")).to_have_value("16:00")
    expect(dialog.get_by_label("Which child is this for?")).to_be_hidden()
    fill_recurring(dialog, ["Monday", "Wednesday"], "14:00", "16:00")
    dialog.get_by_label("Message to the tutor").fill("I'd like to book sessions")
    dialog.get_by_label("Your price offer").fill("200")
    shot(page, "package-modal", full_page=False)
    dialog.get_by_role("button", name="Send request").click()
    expect(dialog.get_by_role("heading", name="Request sent")).to_be_visible()
    expect(dialog).to_contain_text("Algebra Basics")
    shot(page, "request-sent", full_page=False)
    [first] = my_requests(api, student)
    assert first["package_id"] == algebra["id"]
    assert first["tutor_id"] == tutor.role_ids["tutor"]
    assert first["status"] == "pending"
    assert first["days"] == ["Monday", "Wednesday"]
    assert first["start_time"].startswith("14:00") and first["end_time"].startswith("16:00")
    assert float(first["counter_offer_price"]) == 200.0
    assert first["message"] == "I'd like to book sessions"
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    assert dialogs == []

    # 2. the same package again: the seed's alert, and the modal closes
    dialog = open_package(page, "Algebra Basics")
    fill_recurring(dialog, ["Monday", "Wednesday"], "14:00", "16:00")
    dialog.get_by_role("button", name="Send request").click()
    expect(dialog).to_be_hidden()
    assert duplicate_request_id(dialogs) == first["id"]
    assert len(my_requests(api, student)) == 1

    # 3. a different package of the same tutor, on specific dates
    dialog = open_package(page, "Physics Exam Prep")
    expect(dialog.get_by_label("Specific dates")).to_be_checked()
    day1 = date.today() + timedelta(days=7)
    day2 = date.today() + timedelta(days=14)
    for day in (day2, day1):
        dialog.get_by_label("Add a date").fill(day.isoformat())
        dialog.get_by_role("button", name="Add date").click()
    expect(dialog.locator("#date-chips li")).to_have_count(2)
    dialog.get_by_label("Start time").fill("09:00")
    dialog.get_by_label("End time").fill("11:30")
    dialog.get_by_role("button", name="Send request").click()
    expect(dialog.get_by_role("heading", name="Request sent")).to_be_visible()
    assert len(dialogs) == 1
    requests = my_requests(api, student)
    assert len(requests) == 2
    newest = requests[0]
    assert newest["package_id"] == physics["id"]
    assert newest["schedule_type"] == "specific_dates"
    assert newest["specific_dates"] == [day1.isoformat(), day2.isoformat()]


def test_parent_books_for_the_chosen_child(new_page, factory, db):
    tutor = factory.sample_tutor()
    parent = factory.parent(children=2, first_name="Tigist", father_name="Haile")
    first_child, second_child = parent.extra["children"]
    page = new_page()
    dialogs = capture_dialogs(page)
    login(page, parent, f"view-tutor.html?id={tutor.role_ids['tutor']}")

    dialog = open_package(page, "Algebra Basics")
    child_select = dialog.get_by_label("Which child is this for?")
    expect(child_select).to_be_visible()
    expect(child_select.locator("option")).to_have_count(3)  # "Choose a child…" and the two
    expect(child_select).to_contain_text(second_child.full_name)
    fill_recurring(dialog, ["Tuesday"], "15:00", "16:00")
    dialog.get_by_role("button", name="Send request").click()
    expect(dialog.locator("#request-form-error")).to_contain_text("Choose which child")
    child_select.select_option(str(second_child.role_ids["student"]))
    shot(page, "package-modal-parent", full_page=False)
    dialog.get_by_role("button", name="Send request").click()
    expect(dialog.get_by_role("heading", name="Request sent")).to_be_visible()
    assert dialogs == []

    with db.transaction() as cur:
        cur.execute(
            "SELECT requester_id, requester_type, requested_to_id"
            " FROM requested_sessions WHERE tutor_id = %s",
            (tutor.role_ids["tutor"],),
        )
        rows = cur.fetchall()
    child_id = second_child.role_ids["student"]
    expected = {"requester_id": parent.id, "requester_type": "parent", "requested_to_id": child_id}
    assert [dict(r) for r in rows] == [expected]
    assert first_child.role_ids["student"] != second_child.role_ids["student"]


def test_modal_is_keyboard_usable_and_validates(new_page, factory, api):
    tutor = factory.sample_tutor()
    student = factory.student()
    page = new_page()
    login(page, student, f"view-tutor.html?id={tutor.role_ids['tutor']}")
    card = page.locator(".package-card", has_text="Algebra Basics")
    card.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    inside = "document.getElementById('package-modal-dialog').contains(document.activeElement)"
    page.wait_for_function(inside)
    for _ in range(30):  # more stops than the modal has: focus wraps around inside it
        page.keyboard.press("Tab")
        assert page.evaluate(inside)
    for _ in range(5):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(inside)

    # client-side checks stop an incomplete form before it reaches the server
    fill_recurring(dialog, [], "14:00", "13:00")
    dialog.get_by_role("button", name="Send request").click()
    error = dialog.get_by_role("alert")
    expect(error).to_contain_text("Pick at least one day.")
    expect(error).to_contain_text("The start time must be before the end time.")
    assert my_requests(api, student) == []

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate("document.activeElement.dataset.packageId") == str(tutor.extra["packages"][0]["id"])


def test_other_errors_alert_with_a_readable_message(new_page, factory, api):
    tutor = factory.sample_tutor()
    algebra = tutor.extra["packages"][0]
    student = factory.student()
    page = new_page()
    dialogs = capture_dialogs(page)
    login(page, student, f"view-tutor.html?id={tutor.role_ids['tutor']}")
    dialog = open_package(page, "Algebra Basics")
    fill_recurring(dialog, ["Friday"], "10:00", "12:00")
    # The tutor withdraws the package while the student is filling in the form.
    response = api.delete(f"/api/tutor/packages/{algebra['id']}", headers=tutor.headers)
    assert response.status_code == 200, response.text
    dialog.get_by_role("button", name="Send request").click()
    page.wait_for_function("document.querySelector('#submit-request').textContent === 'Send request'")
    assert dialogs == ["❌ Failed to send session request:\n\nPackage not found"]
    expect(dialog).to_be_visible()  # the form stays open so the user can change it

    # A 422's list of errors is flattened into lines a person can read.
    flattened = page.evaluate(
        """Astegni.errorMessage([
            {type: 'literal_error', loc: ['body', 'days', 0], msg: "Input should be 'Monday'"},
            {type: 'value_error', loc: ['body', 'start_time'], msg: 'start_time must be before end_time'}
        ])"""
    )
    assert flattened == "days[0]: Input should be 'Monday'\nstart_time: start_time must be before end_time"


def test_multi_role_user_switches_role_to_request(new_page, factory):
    tutor = factory.sample_tutor()
    user = factory.user(["tutor", "student"], first_name="Dawit", father_name="Alemu")
    page = new_page()
    page.goto(f"/login.html?next=view-tutor.html?id={tutor.role_ids['tutor']}")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", name="Continue as")).to_be_visible()
    shot(page, "login-role-choice")
    page.get_by_label("tutor", exact=True).check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/view-tutor.html?id=*")
    expect(page.get_by_label("Active role")).to_have_value("tutor")

    dialog = open_package(page, "Algebra Basics")
    expect(dialog.get_by_role("button", name="Send request")).to_be_disabled()
    dialog.get_by_role("button", name="Switch to student").click()
    expect(dialog.get_by_role("button", name="Send request")).to_be_enabled()
    expect(page.get_by_label("Active role")).to_have_value("student")
    fill_recurring(dialog, ["Saturday"], "10:00", "11:00")
    dialog.get_by_role("button", name="Send request").click()
    expect(dialog.get_by_role("heading", name="Request sent")).to_be_visible()


def test_pages_fit_a_phone(new_page, factory):
    from tests.browser.conftest import PHONE

    tutor = factory.sample_tutor()
    parent = factory.parent(children=1)
    page = new_page(PHONE)
    login(page, parent, f"view-tutor.html?id={tutor.role_ids['tutor']}")
    expect(page.locator(".package-card")).to_have_count(2)
    no_sideways_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(no_sideways_scroll)
    shot(page, "phone-view-tutor")
    dialog = open_package(page, "Algebra Basics")
    box = page.locator("#package-modal-dialog").bounding_box()
    assert box and box["width"] <= PHONE["width"]
    shot(page, "phone-package-modal", full_page=False)
    dialog.get_by_role("button", name="Cancel").click()
    page.goto("/index.html")
    expect(page.get_by_role("heading", name=re.compile("Welcome back"))).to_be_visible()
    assert page.evaluate(no_sideways_scroll)
    shot(page, "phone-index")


def test_an_expired_session_goes_to_the_login_page_and_back(new_page, factory):
    tutor = factory.sample_tutor()
    student = factory.student()
    page = new_page()
    page.goto("/index.html")
    page.evaluate("localStorage.token = 'not-a-token'; localStorage.refresh_token = 'nope'")
    page.goto(f"/view-tutor.html?id={tutor.role_ids['tutor']}")
    page.wait_for_url("**/login.html?next=*")
    assert page.evaluate("localStorage.getItem('token')") is None
    page.get_by_label("Email").fill(student.email)
    page.get_by_label("Password").fill(student.password)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"**/view-tutor.html?id={tutor.role_ids['tutor']}")
    expect(page.locator(".package-card")).to_have_count(2)
