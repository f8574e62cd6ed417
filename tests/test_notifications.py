"""Email notifications, delivered to a real SMTP server (aiosmtpd) in the test process: who gets
which email, in which language, with which link; preferences; nothing for a rolled-back write."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from astegni.core import housekeeping as expiry
from astegni.core.queries import fetch_one
from astegni.core.security import Claims
from astegni.i18n import ethiopian
from astegni.notifications import KINDS
from astegni.notifications.sender import send_round
from astegni.session_requests.models import SessionRequestIn
from astegni.session_requests.service import create_params, queries
from tests.support.live import make_settings
from tests.support.mail import MailServer, html_of, text_of
from tests.support.polling import eventually
from tests.support.requests import URL, backdate, request_body, rows, scalar

BASE = "https://astegni.example"


@pytest.fixture
def settings(db_url: str, mail: MailServer):
    return make_settings(
        db_url,
        smtp_url=mail.url,
        public_base_url=BASE,
        email_poll_seconds=0.05,
        email_retry_base_seconds=0.05,
        email_retry_max_seconds=0.2,
        email_max_attempts=3,
        chat_digest_delay_seconds=0.3,
        chat_digest_interval_seconds=3600,
    )


def create(client, user, tutor, package: int = 0, **overrides: Any) -> int:
    response = client.post(URL, json=request_body(tutor, package, **overrides), headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["request_id"]


def set_locale(db, user, locale: str) -> None:
    with db.transaction() as cur:
        cur.execute("UPDATE users SET locale = %s WHERE id = %s", (locale, user.id))


def outbox(db) -> list[dict[str, Any]]:
    return rows(db, "SELECT * FROM email_outbox ORDER BY id")


def settled(db) -> bool:
    """Every outbox row has its final status."""
    return scalar(db, "SELECT count(*) FROM email_outbox WHERE status IN ('pending', 'sending')") == 0


# ---------------------------------------------------------------------------- requests


def test_a_new_request_emails_the_tutor_once_with_a_link_to_the_requests_page(client, factory, db, mail):
    student, tutor = factory.student(), factory.tutor()
    request_id = create(client, student, tutor, message="Can we start <b>Monday</b>?")

    [message] = mail.wait_for(lambda ms: len(ms) >= 1)
    assert message["To"].addresses[0].addr_spec == tutor.email
    assert message["Subject"] == "New session request: Package 1"
    row = outbox(db)[0]
    assert message["Message-ID"] == f"<astegni-outbox-{row['id']}@astegni.local>"
    assert row["dedupe_key"] == f"request_created:{request_id}:{tutor.id}"
    text, html = text_of(message), html_of(message)
    assert f"{BASE}/requests.html" in text and f'href="{BASE}/requests.html"' in html
    assert student.full_name in text and "150.0 ETB" in text
    assert "Can we start <b>Monday</b>?" in text
    assert "&lt;b&gt;Monday&lt;/b&gt;" in html and "<b>Monday</b>" not in html  # escaped
    eventually(lambda: settled(db), what="outbox settled")
    assert len(mail.messages) == 1 and outbox(db)[0]["status"] == "sent"


def test_a_tutor_who_reads_amharic_gets_the_request_in_amharic(client, factory, db, mail):
    student, tutor = factory.student(), factory.tutor()
    set_locale(db, tutor, "am")
    create(client, student, tutor)
    [message] = mail.wait_for(lambda ms: len(ms) >= 1)
    assert message["Subject"] == "አዲስ የክፍለ ጊዜ ጥያቄ፦ Package 1"
    assert message["Content-Language"] == "am"
    assert "የክፍለ ጊዜ ጥያቄ ልኮልዎታል" in text_of(message)
    sent_on = rows(db, "SELECT data->>'created_at' AS at FROM email_outbox")[0]["at"]
    day = dt.datetime.fromisoformat(sent_on).astimezone(ZoneInfo("Africa/Addis_Ababa"))
    ethiopian_date = f"{ethiopian.format_date(day, 'am')} ዓ.ም. ({ethiopian.format_date(day, 'en')})"
    assert f"በ{ethiopian_date}" in text_of(message)
    assert '<html lang="am">' in html_of(message) and f"{BASE}/requests.html" in html_of(message)


def test_accepting_a_parents_request_emails_the_parent_and_the_child(client, factory, db, mail):
    parent, tutor = factory.parent(children=1), factory.tutor()
    child = parent.extra["children"][0]
    set_locale(db, child, "am")
    request_id = create(client, parent, tutor, requested_to_id=child.role_ids["student"])
    mail.wait_for(lambda ms: len(mail.to(tutor.email)) == 1)

    response = client.patch(f"{URL}/tutor/{request_id}", json={"status": "accepted"}, headers=tutor.headers)
    assert response.status_code == 200, response.text
    mail.wait_for(lambda ms: mail.to(parent.email) and mail.to(child.email))
    [to_parent], [to_child] = mail.to(parent.email), mail.to(child.email)
    assert to_parent["Subject"] == "Session request accepted: Package 1"
    assert f"{tutor.full_name} accepted your session request" in text_of(to_parent)
    assert to_child["Subject"] == "የክፍለ ጊዜ ጥያቄ ተቀባይነት አግኝቷል፦ Package 1"
    assert "ለእርስዎ የቀረበውን" in text_of(to_child)
    eventually(lambda: settled(db), what="outbox settled")
    assert len(mail.to(tutor.email)) == 1  # the tutor answered; no email about it


def test_a_rejection_carries_the_reason_escaped_in_html(client, factory, db, mail):
    student, tutor = factory.student(), factory.tutor()
    request_id = create(client, student, tutor)
    reason = "Fully booked <script>alert(1)</script>"
    response = client.patch(
        f"{URL}/tutor/{request_id}",
        json={"status": "rejected", "rejected_reason": reason},
        headers=tutor.headers,
    )
    assert response.status_code == 200, response.text
    mail.wait_for(lambda ms: mail.to(student.email))
    [message] = mail.to(student.email)
    assert message["Subject"] == "Session request declined: Package 1"
    assert f"Reason: {reason}" in text_of(message)
    assert "<script>" not in html_of(message) and "&lt;script&gt;" in html_of(message)


def test_cancelled_and_expired_requests_email_the_requester(client, factory, db, mail):
    student, tutor = factory.student(), factory.tutor()
    cancelled = create(client, student, tutor, 0)
    expiring = create(client, student, tutor, 1)
    assert client.post(f"{URL}/{cancelled}/cancel", headers=student.headers).status_code == 200
    backdate(db, expiring)
    assert expiry.sweep(db) == 1
    messages = mail.wait_for(lambda ms: len(mail.to(student.email)) == 2)
    subjects = sorted(m["Subject"] for m in messages if m in mail.to(student.email))
    assert subjects == ["Session request cancelled: Package 1", "Session request expired: Package 2"]
    expired = next(m for m in mail.to(student.email) if "expired" in m["Subject"])
    assert "did not answer" in text_of(expired) and f"{BASE}/requests.html" in text_of(expired)


# ---------------------------------------------------------------------------- chat digest


def send_chat(client, user, conversation_id: int, content: str) -> dict[str, Any]:
    body = {"conversation_id": conversation_id, "content": content}
    response = client.post("/api/chat/messages", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["message"]


def wait_past_delay(db, message: dict[str, Any], settings) -> None:
    """Until the message is older than the digest delay (by the database's clock)."""
    eventually(
        lambda: scalar(
            db,
            "SELECT created_at < now() - make_interval(secs => %s) FROM chat_messages WHERE id = %s",
            settings.chat_digest_delay_seconds,
            message["id"],
        ),
        what="message past the digest delay",
    )


def test_unread_chat_messages_bring_one_digest_per_interval_with_a_link_to_the_inbox(
    client, factory, db, mail, settings
):
    student, tutor = factory.student(), factory.tutor()
    set_locale(db, student, "am")
    request_id = create(client, student, tutor)
    conversation_id = scalar(db, "SELECT conversation_id FROM requested_sessions WHERE id = %s", request_id)
    # The tutor read the request card: only the student's unread messages count.
    send_chat(client, tutor, conversation_id, "Hello! When would you like to start?")
    send_chat(client, tutor, conversation_id, "I am free on Mondays.")
    mail.wait_for(lambda ms: mail.to(student.email))
    [digest] = mail.to(student.email)
    assert digest["Subject"] == "በአስተግኒ 2 ያልተነበቡ መልዕክቶች አሉዎት"
    assert f"{BASE}/inbox.html" in text_of(digest) and tutor.full_name in text_of(digest)

    # More messages within the interval: no second digest for this conversation.
    later = send_chat(client, tutor, conversation_id, "Are you there?")
    wait_past_delay(db, later, settings)
    for _ in range(2):  # digest scans that see the new message past its delay
        asyncio.run(send_round(db, settings))
    assert len(mail.to(student.email)) == 1
    assert scalar(db, "SELECT count(*) FROM email_outbox WHERE kind = 'chat_digest'") == 1
    # The tutor has nothing unread but the request card, which had its own email.
    assert len(mail.to(tutor.email)) == 1


def test_a_read_message_brings_no_digest(client, factory, db, mail, settings):
    student, tutor = factory.student(), factory.tutor()
    request_id = create(client, student, tutor)
    conversation_id = scalar(db, "SELECT conversation_id FROM requested_sessions WHERE id = %s", request_id)
    message = send_chat(client, tutor, conversation_id, "Hi")
    response = client.post(
        f"/api/chat/conversations/{conversation_id}/read",
        json={"last_read_message_id": message["id"]},
        headers=student.headers,
    )
    assert response.status_code in (200, 204), response.text
    wait_past_delay(db, message, settings)
    asyncio.run(send_round(db, settings))
    assert scalar(db, "SELECT count(*) FROM email_outbox WHERE kind = 'chat_digest'") == 0


def test_no_digest_tells_of_messages_from_someone_the_reader_blocks(client, factory, db, mail, settings):
    student, tutor = factory.student(), factory.tutor()
    request_id = create(client, student, tutor)
    conversation_id = scalar(db, "SELECT conversation_id FROM requested_sessions WHERE id = %s", request_id)
    message = send_chat(client, tutor, conversation_id, "Hi")
    response = client.post("/api/chat/blocks", json={"user_id": tutor.id}, headers=student.headers)
    assert response.status_code == 201, response.text
    wait_past_delay(db, message, settings)
    asyncio.run(send_round(db, settings))
    assert scalar(db, "SELECT count(*) FROM email_outbox WHERE kind = 'chat_digest'") == 0


# ---------------------------------------------------------------------------- preferences


def test_preferences_list_every_kind_and_turn_kinds_off_and_on(client, factory):
    user = factory.student()
    response = client.get("/api/me/notifications", headers=user.headers)
    assert response.status_code == 200
    assert response.json() == dict.fromkeys(KINDS, True)
    response = client.put(
        "/api/me/notifications", json={"chat_digest": False, "request_expired": False}, headers=user.headers
    )
    assert response.status_code == 200
    assert response.json() == dict.fromkeys(KINDS, True) | {"chat_digest": False, "request_expired": False}
    response = client.put("/api/me/notifications", json={"chat_digest": True}, headers=user.headers)
    assert response.json() == dict.fromkeys(KINDS, True) | {"request_expired": False}
    assert client.get("/api/me/notifications", headers=user.headers).json() == response.json()


@pytest.mark.parametrize("body", [{"no_such_kind": False}, {"chat_digest": "no"}, {"chat_digest": 0}, []])
def test_preferences_refuse_unknown_kinds_and_non_booleans(client, factory, body):
    user = factory.student()
    response = client.put("/api/me/notifications", json=body, headers=user.headers)
    assert response.status_code == 422, response.text
    assert client.get("/api/me/notifications", headers=user.headers).json() == dict.fromkeys(KINDS, True)


def test_preferences_need_a_token(client):
    assert client.get("/api/me/notifications").status_code == 401
    assert client.put("/api/me/notifications", json={}).status_code == 401


def test_a_kind_turned_off_is_not_sent(client, factory, db, mail):
    student, tutor = factory.student(), factory.tutor()
    response = client.put("/api/me/notifications", json={"request_created": False}, headers=tutor.headers)
    assert response.status_code == 200
    request_id = create(client, student, tutor)
    client.post(f"{URL}/{request_id}/cancel", headers=student.headers)
    mail.wait_for(lambda ms: mail.to(student.email))  # the email after it has gone
    eventually(lambda: settled(db), what="outbox settled")
    assert mail.to(tutor.email) == []
    assert [r["status"] for r in outbox(db) if r["kind"] == "request_created"] == ["skipped"]


# ---------------------------------------------------------------------------- transactions


def test_a_rolled_back_create_leaves_no_email(factory, db, mail, settings):
    student, tutor = factory.student(), factory.tutor()
    claims = Claims(user_id=student.id, role="student", token_type="access")
    params = create_params(claims, _create_body(tutor), rate_limit=0, expiry_seconds=3600)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), db.transaction() as cur:
        row = fetch_one(cur, queries.sr_create, params)
        assert row["outcome"] == "created"
        assert scalar_in(cur, "SELECT count(*) FROM email_outbox") == 1  # written, not yet committed
        raise Abort
    assert outbox(db) == []
    assert asyncio.run(send_round(db, settings)) == 0
    assert mail.messages == []


def scalar_in(cur, sql: str) -> Any:
    cur.execute(sql)
    return next(iter(cur.fetchone().values()))


def _create_body(tutor) -> dict[str, Any]:
    """What the create route passes to session_request_create for the usual body."""
    body = request_body(tutor) | {"start_time": "14:00", "end_time": "16:00"}
    return SessionRequestIn.model_validate(body).db_params("Africa/Addis_Ababa")
