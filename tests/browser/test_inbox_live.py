"""inbox.html and requests.html: request cards and their status, live on both sides."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import capture_dialogs, fill_recurring, login, open_package, shot, wait_live
from tests.support.factories import TestUser

pytestmark = pytest.mark.browser


def request_via_api(api, student: TestUser, tutor: TestUser, package: dict) -> dict:
    body = {
        "tutor_id": tutor.role_ids["tutor"],
        "package_id": package["id"],
        "schedule_type": "specific_dates",
        "specific_dates": [(date.today() + timedelta(days=3)).isoformat()],
        "start_time": "09:00",
        "end_time": "10:00",
        "message": "Can we focus on past exam papers?",
    }
    response = api.post("/api/session-requests", json=body, headers=student.headers)
    assert response.status_code == 200, response.text
    return response.json()


def card(page: Page, package_name: str):
    return page.locator(".request-card", has_text=package_name)


def test_tutor_sees_the_request_live_accepts_and_the_student_sees_it(new_page, factory, api):
    tutor = factory.sample_tutor()
    algebra, physics = tutor.extra["packages"]
    student = factory.user(["student"], first_name="Abebe", father_name="Kebede")

    tutor_page = new_page()
    socket_urls: list[str] = []
    tutor_page.on("websocket", lambda ws: socket_urls.append(ws.url))
    login(tutor_page, tutor, "inbox.html")
    wait_live(tutor_page)
    expect(tutor_page.get_by_text("No conversations yet")).to_be_visible()
    tutor_page.evaluate("window.__sameDocument = true")
    # The page authenticates in its first frame: servers and proxies log URLs.
    assert socket_urls and all("token" not in url for url in socket_urls), socket_urls

    # The student requests a package through the page, then opens the conversation.
    student_page = new_page()
    login(student_page, student, f"view-tutor.html?id={tutor.role_ids['tutor']}")
    dialog = open_package(student_page, "Algebra Basics")
    fill_recurring(dialog, ["Monday", "Wednesday"], "14:00", "16:00")
    dialog.get_by_label("Your price offer").fill("200")
    dialog.get_by_label("Message to the tutor").fill("My daughter needs help with quadratics.")
    dialog.get_by_role("button", name="Send request").click()
    dialog.get_by_role("link", name="Open conversation").click()
    student_page.wait_for_url("**/inbox.html?conversation=*")
    wait_live(student_page)
    expect(card(student_page, "Algebra Basics").locator(".badge")).to_have_text("pending")
    expect(card(student_page, "Algebra Basics").get_by_role("button", name="Cancel request")).to_be_visible()

    # The tutor's open inbox shows the new conversation, unread, without a reload.
    conversation = tutor_page.locator(".conv-item", has_text="Abebe Kebede")
    expect(conversation.locator(".unread-count")).to_have_text("1")
    expect(conversation).to_contain_text("Session request")
    assert tutor_page.evaluate("window.__sameDocument") is True
    conversation.get_by_role("button").click()
    algebra_card = card(tutor_page, "Algebra Basics")
    expect(algebra_card.locator(".badge")).to_have_text("pending")
    expect(algebra_card).to_contain_text("ETB 250.00 / hour")
    expect(algebra_card).to_contain_text("ETB 200.00 / hour")
    expect(algebra_card).to_contain_text("Mon, Wed · 14:00–16:00")
    expect(algebra_card).to_contain_text("My daughter needs help with quadratics.")
    expect(conversation.locator(".unread-count")).to_have_count(0)

    # Chat both ways, live.
    student_page.get_by_label("Message", exact=True).fill("Hello! Can we start next week?")
    student_page.get_by_role("button", name="Send").click()
    expect(tutor_page.locator(".msg .bubble", has_text="Hello! Can we start next week?")).to_be_visible()
    tutor_page.get_by_label("Message", exact=True).fill("Yes, Monday works.")
    tutor_page.keyboard.press("Enter")
    expect(student_page.locator(".msg .bubble", has_text="Yes, Monday works.")).to_be_visible()

    # A second request arrives in the tutor's open conversation as a new card.
    request_via_api(api, student, tutor, physics)
    physics_card = card(tutor_page, "Physics Exam Prep")
    expect(physics_card.locator(".badge")).to_have_text("pending")
    expect(card(student_page, "Physics Exam Prep")).to_be_visible()
    shot(tutor_page, "inbox-tutor")

    # Accept one, reject the other with a reason: the student's open inbox follows live.
    physics_card.get_by_role("button", name="Accept").click()
    expect(physics_card.locator(".badge")).to_have_text("accepted")
    expect(card(student_page, "Physics Exam Prep").locator(".badge")).to_have_text("accepted")
    expect(card(student_page, "Physics Exam Prep").get_by_role("button")).to_have_count(0)

    algebra_card.get_by_role("button", name="Reject").click()
    algebra_card.get_by_label("Reason for rejecting").fill("Fully booked on Mondays, sorry.")
    algebra_card.get_by_role("button", name="Reject request").click()
    expect(algebra_card.locator(".badge")).to_have_text("rejected")
    student_card = card(student_page, "Algebra Basics")
    expect(student_card.locator(".badge")).to_have_text("rejected")
    expect(student_card).to_contain_text("Fully booked on Mondays, sorry.")
    assert tutor_page.evaluate("window.__sameDocument") is True
    shot(student_page, "inbox-student")

    statuses = {
        r["package_id"]: r["status"]
        for r in api.get("/api/session-requests/my-requests", headers=student.headers).json()
    }
    assert statuses == {algebra["id"]: "rejected", physics["id"]: "accepted"}


def test_inbox_catches_up_after_a_reconnect(new_page, factory, api):
    tutor = factory.sample_tutor()
    student = factory.student()
    first = request_via_api(api, student, tutor, tutor.extra["packages"][0])
    page = new_page()
    blocked = {"on": False}

    def gate(ws) -> None:
        if blocked["on"]:
            ws.close(code=1011, reason="network down")
        else:
            ws.connect_to_server()

    page.route_web_socket("**/api/chat/ws*", gate)
    login(page, tutor, f"inbox.html?conversation={first['conversation_id']}")
    wait_live(page)
    expect(card(page, "Algebra Basics")).to_be_visible()

    blocked["on"] = True
    page.evaluate("Astegni.live.drop()")
    expect(page.locator("#live-status")).to_have_text("Reconnecting…")
    # Written while the page has no connection: only the catch-up can bring it.
    response = api.post(
        "/api/chat/messages",
        json={"conversation_id": first["conversation_id"], "content": "Sent while you were offline"},
        headers=student.headers,
    )
    assert response.status_code == 201, response.text
    blocked["on"] = False
    wait_live(page)
    expect(page.locator(".msg .bubble", has_text="Sent while you were offline")).to_have_count(1)
    expect(page.locator("#live-status")).to_have_text("Live")


def test_requests_pages_for_both_sides(new_page, factory, api):
    tutor = factory.sample_tutor()
    algebra, physics = tutor.extra["packages"]
    student = factory.user(["student"], first_name="Hanna", father_name="Tesfaye")
    request_via_api(api, student, tutor, algebra)
    request_via_api(api, student, tutor, physics)

    student_page = new_page()
    dialogs = capture_dialogs(student_page)
    login(student_page, student, "requests.html")
    expect(student_page.get_by_role("heading", name="My requests")).to_be_visible()
    items = student_page.locator(".request-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Physics Exam Prep")  # newest first
    expect(items.first).to_contain_text("Selam Bekele")
    wait_live(student_page)
    shot(student_page, "requests-student")

    tutor_page = new_page()
    login(tutor_page, tutor, "requests.html")
    expect(tutor_page.get_by_role("heading", name="Incoming requests")).to_be_visible()
    incoming = tutor_page.locator(".request-item", has_text="Algebra Basics")
    expect(incoming).to_contain_text("Hanna Tesfaye")
    shot(tutor_page, "requests-tutor")
    incoming.get_by_role("button", name="Reject").click()
    incoming.get_by_label("Reason for rejecting").fill("No free slots this term.")
    incoming.get_by_role("button", name="Reject request").click()
    expect(tutor_page.locator(".request-item", has_text="Algebra Basics").locator(".badge")).to_have_text(
        "rejected"
    )

    # The student's open page follows the tutor's answer live.
    algebra_item = student_page.locator(".request-item", has_text="Algebra Basics")
    expect(algebra_item.locator(".badge")).to_have_text("rejected")
    expect(algebra_item).to_contain_text("No free slots this term.")

    # The student cancels the other one (after confirming).
    physics_item = student_page.locator(".request-item", has_text="Physics Exam Prep")
    physics_item.get_by_role("button", name="Cancel request").click()
    expect(physics_item.locator(".badge")).to_have_text("cancelled")
    assert dialogs == ["Cancel this session request?"]

    student_page.goto("/index.html")
    expect(student_page.get_by_role("heading", name="Welcome back, Hanna.")).to_be_visible()
    expect(student_page.get_by_role("link", name="Selam Bekele")).to_be_visible()  # tutors contacted
    shot(student_page, "index")

    # The filter shows one status at a time.
    tutor_page.get_by_role("button", name="pending", exact=True).click()
    expect(tutor_page.get_by_text("No requests with status “pending” yet.")).to_be_visible()


def test_inbox_on_a_phone_shows_user_content_as_text(new_page, factory, api):
    from tests.browser.conftest import PHONE

    tutor = factory.sample_tutor()
    student = factory.student()
    sent = request_via_api(api, student, tutor, tutor.extra["packages"][1])
    hostile = '<img src=x onerror="window.__xss = 1"> <b>not bold</b>'
    response = api.post(
        "/api/chat/messages",
        json={"conversation_id": sent["conversation_id"], "content": hostile},
        headers=student.headers,
    )
    assert response.status_code == 201, response.text

    page = new_page(PHONE)
    login(page, tutor, "inbox.html")
    conversation = page.locator(".conv-item").first
    expect(conversation.locator(".unread-count")).to_have_text("2")
    expect(page.locator("#thread")).to_be_hidden()  # one pane at a time on a phone
    shot(page, "phone-inbox-list")
    conversation.get_by_role("button").click()
    expect(page.locator(".conv-pane")).to_be_hidden()
    expect(card(page, "Physics Exam Prep").get_by_role("button", name="Accept")).to_be_visible()
    expect(page.locator(".msg .bubble", has_text="not bold")).to_have_text(hostile)
    assert page.locator(".messages img, .messages b").count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "phone-inbox-thread")
    page.get_by_role("button", name="Back to conversations").click()
    expect(page.locator(".conv-pane")).to_be_visible()
