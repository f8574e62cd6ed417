"""What the caller already asked for, as the people involved see it: a student's pending request
on the package card (and cancelled from there), a parent's per child in the modal, a child's
view of what the parent booked, and the existing request offered after a stale 409."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    capture_dialogs,
    doc_shot,
    duplicate_request_id,
    fill_recurring,
    login,
    open_package,
    switch_to_amharic,
)
from tests.support.factories import TestUser

pytestmark = pytest.mark.browser
URL = "/api/session-requests"


def send(api, user: TestUser, tutor: TestUser, package: dict, **extra) -> int:
    body = {"tutor_id": tutor.role_ids["tutor"], "package_id": package["id"], "schedule_type": "recurring"}
    body |= {"days": ["Monday"], "start_time": "14:00", "end_time": "15:00"} | extra
    response = api.post(URL, json=body, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["request_id"]


def status_of(api, user: TestUser, request_id: int) -> str:
    rows = api.get(f"{URL}/my-requests", headers=user.headers).json()
    return next(r["status"] for r in rows if r["id"] == request_id)


def card(page: Page, name: str):
    return page.locator(".package-card", has_text=name)


def test_a_student_sees_the_pending_request_on_the_card_and_cancels_it(new_page, factory, api):
    tutor = factory.sample_tutor()
    algebra = tutor.extra["packages"][0]
    student = factory.user(["student"], first_name="Abebe", father_name="Kebede")
    request_id = send(api, student, tutor, algebra)
    page = new_page()
    dialogs = capture_dialogs(page)
    login(page, student, f"view-tutor.html?id={tutor.role_ids['tutor']}")

    algebra_card = card(page, "Algebra Basics")
    mine = algebra_card.locator(".my-request")
    expect(mine).to_contain_text("Your request")
    expect(mine).to_contain_text("Pending", ignore_case=True)
    expect(mine).to_contain_text("ETB 250.00 per hour")
    expect(mine.get_by_role("link", name="View request")).to_have_attribute(
        "href", f"requests.html#request-{request_id}"
    )
    expect(algebra_card).not_to_contain_text("View details & request")
    # The other package is offered as before.
    expect(card(page, "Physics Exam Prep")).to_contain_text("View details & request")
    doc_shot(page, "view-tutor-pending-en")

    mine.get_by_role("button", name="Cancel request").click()
    expect(algebra_card).to_contain_text("View details & request")
    expect(algebra_card.locator(".my-request")).to_have_count(0)
    assert dialogs == ["Cancel this session request?"]
    assert status_of(api, student, request_id) == "cancelled"

    # The card is the request action again: the form opens.
    dialog = open_package(page, "Algebra Basics")
    expect(dialog.get_by_role("button", name="Send request")).to_be_enabled()


def test_the_pending_card_in_amharic(new_page, factory, api):
    tutor = factory.sample_tutor()
    student = factory.user(["student"], first_name="Abebe", father_name="Kebede")
    send(api, student, tutor, tutor.extra["packages"][0])
    page = new_page()
    login(page, student, f"view-tutor.html?id={tutor.role_ids['tutor']}")
    expect(card(page, "Algebra Basics").locator(".my-request")).to_be_visible()
    switch_to_amharic(page)
    mine = card(page, "Algebra Basics").locator(".my-request")
    expect(mine).to_contain_text("የእርስዎ ጥያቄ")
    expect(mine).to_contain_text("በመጠባበቅ ላይ")
    expect(mine.get_by_role("link", name="ጥያቄውን ይመልከቱ")).to_be_visible()
    expect(mine.get_by_role("button", name="ጥያቄውን ሰርዝ")).to_be_visible()
    doc_shot(page, "view-tutor-pending-am")


def test_a_parent_sees_a_childs_pending_request_instead_of_the_form(new_page, factory, api):
    tutor = factory.sample_tutor()
    algebra = tutor.extra["packages"][0]
    parent = factory.parent(children=2, first_name="Tigist", father_name="Worku")
    booked_child, other_child = parent.extra["children"]
    request_id = send(api, parent, tutor, algebra, requested_to_id=booked_child.role_ids["student"])
    page = new_page()
    dialogs = capture_dialogs(page)
    login(page, parent, f"view-tutor.html?id={tutor.role_ids['tutor']}")

    dialog = open_package(page, "Algebra Basics")
    child_select = dialog.get_by_label("Which child is this for?")
    child_select.select_option(str(booked_child.role_ids["student"]))
    existing = dialog.locator("#child-request")
    expect(existing).to_contain_text(f"{booked_child.full_name} already has a pending request")
    expect(existing).to_contain_text("ETB 250.00 per hour")
    expect(existing.get_by_role("link", name="View request")).to_have_attribute(
        "href", f"requests.html#request-{request_id}"
    )
    expect(dialog.get_by_label("Start time")).to_be_hidden()
    expect(dialog.get_by_role("button", name="Send request")).to_be_disabled()

    # The other child has no request: the form.
    child_select.select_option(str(other_child.role_ids["student"]))
    expect(existing).to_be_hidden()
    expect(dialog.get_by_label("Start time")).to_be_visible()
    expect(dialog.get_by_role("button", name="Send request")).to_be_enabled()

    # Back to the first child, and cancel from the modal: the form returns for them.
    child_select.select_option(str(booked_child.role_ids["student"]))
    existing.get_by_role("button", name="Cancel request").click()
    expect(existing).to_be_hidden()
    expect(dialog.get_by_label("Start time")).to_be_visible()
    assert dialogs == ["Cancel this session request?"]
    assert status_of(api, parent, request_id) == "cancelled"


def test_a_child_sees_what_the_parent_booked_without_cancel(new_page, factory, api):
    tutor = factory.sample_tutor()
    algebra, physics = tutor.extra["packages"]
    parent = factory.parent(children=1, first_name="Tigist", father_name="Worku")
    [child] = parent.extra["children"]
    booked = send(api, parent, tutor, algebra, requested_to_id=child.role_ids["student"])
    own = send(api, child, tutor, physics)
    page = new_page()
    login(page, child, "requests.html")
    page.goto(f"/requests.html#request-{booked}")

    by_parent = page.locator(f"#request-{booked}")
    expect(by_parent).to_contain_text("Requested by your parent Tigist Worku")
    expect(by_parent).to_contain_text("Pending", ignore_case=True)
    expect(by_parent.get_by_role("button", name="Cancel request")).to_have_count(0)
    expect(by_parent).to_be_focused()
    mine = page.locator(f"#request-{own}")
    expect(mine).not_to_contain_text("Requested by")
    expect(mine.get_by_role("button", name="Cancel request")).to_be_visible()

    # On the tutor's page the child sees it too, with View but no Cancel.
    page.goto(f"/view-tutor.html?id={tutor.role_ids['tutor']}")
    panel = card(page, "Algebra Basics").locator(".my-request")
    expect(panel).to_contain_text("Tigist Worku")
    expect(panel.get_by_role("link", name="View request")).to_be_visible()
    expect(panel.get_by_role("button", name="Cancel request")).to_have_count(0)


def test_a_stale_tab_gets_the_alert_then_the_existing_request(new_page, factory, api):
    tutor = factory.sample_tutor()
    tutor_page = f"view-tutor.html?id={tutor.role_ids['tutor']}"
    student = factory.user(["student"], first_name="Abebe", father_name="Kebede")
    first_tab = new_page()
    dialogs = capture_dialogs(first_tab)
    login(first_tab, student, tutor_page)
    dialog = open_package(first_tab, "Algebra Basics")
    fill_recurring(dialog, ["Tuesday"], "15:00", "16:00")

    # Meanwhile, in a second tab of the same browser, the same request goes out.
    second_tab = first_tab.context.new_page()
    second_tab.goto(f"/{tutor_page}")
    other = open_package(second_tab, "Algebra Basics")
    fill_recurring(other, ["Tuesday"], "15:00", "16:00")
    other.get_by_role("button", name="Send request").click()
    expect(other.get_by_role("heading", name="Request sent")).to_be_visible()
    [sent] = api.get(f"{URL}/my-requests", headers=student.headers).json()

    dialog.get_by_role("button", name="Send request").click()
    expect(dialog).to_be_hidden()
    assert duplicate_request_id(dialogs) == sent["id"]

    view = f"requests.html#request-{sent['id']}"
    notice = first_tab.locator("#existing-request")
    expect(notice).to_contain_text("A pending request for this package already exists.")
    expect(notice.get_by_role("link", name="View request")).to_have_attribute("href", view)
    mine = card(first_tab, "Algebra Basics").locator(".my-request")
    expect(mine.get_by_role("link", name="View request")).to_have_attribute("href", view)
    mine.get_by_role("link", name="View request").click()
    first_tab.wait_for_url(f"**/{view}")
    expect(first_tab.locator(f"#request-{sent['id']}")).to_be_focused()


def test_the_card_keeps_the_price_the_request_was_sent_at(new_page, factory, api, db):
    tutor = factory.sample_tutor()
    algebra = tutor.extra["packages"][0]
    student = factory.student()
    send(api, student, tutor, algebra)
    with db.transaction() as cur:
        cur.execute(
            "UPDATE tutor_packages SET hourly_rate = %s WHERE id = %s", (Decimal("300.00"), algebra["id"])
        )
    page = new_page()
    login(page, student, f"view-tutor.html?id={tutor.role_ids['tutor']}")
    algebra_card = card(page, "Algebra Basics")
    expect(algebra_card.locator(".price")).to_contain_text("ETB 300.00")
    expect(algebra_card.locator(".my-request")).to_contain_text("ETB 250.00 per hour")
