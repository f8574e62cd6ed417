"""Every email template in both languages: user-written text is escaped in HTML and kept as
written in plain text; subjects are one line; SMTP_URL forms."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from astegni.notifications import KINDS
from astegni.notifications.render import build_message, render
from astegni.notifications.transport import SmtpConfig, parse_smtp_url
from tests.support.live import make_settings

HOSTILE = '<img src=x onerror="alert(1)">&\r\nBcc: victim@example.com'


def context(kind: str) -> dict:
    return {
        "name": HOSTILE,
        "recipient_id": 1,
        "requester_id": 1,
        "link": "https://astegni.example/requests.html",
        "created_on": "January 2, 2026",
        "changed_on": "January 3, 2026",
        "request_id": 7,
        "status": kind.removeprefix("request_"),
        "package_name": HOSTILE,
        "tutor_name": HOSTILE,
        "requester_name": HOSTILE,
        "learner_name": HOSTILE,
        "requester_type": "parent",
        "message": HOSTILE,
        "rejected_reason": HOSTILE,
        "counter_offer_price": 150,
        "hourly_rate": 250,
        "unread": 2,
        "senders": [HOSTILE],
    }


@pytest.mark.parametrize("locale", ["en", "am"])
@pytest.mark.parametrize("kind", KINDS)
def test_user_text_is_escaped_in_html_and_subjects_are_one_line(kind: str, locale: str):
    rendered = render(kind, locale, context(kind))
    assert "<img" not in rendered.html and "&lt;img" in rendered.html
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert rendered.text.strip() and rendered.html.startswith("<!doctype html>")
    if kind != "chat_digest":
        assert "<img" in rendered.text  # plain text is not HTML: shown as written


def test_a_hostile_name_cannot_add_headers():
    settings = make_settings("postgresql://unused/db")
    row = {
        "id": 5,
        "kind": "request_created",
        "user_id": 1,
        "data": context("request_created") | {"created_at": "2026-01-02T10:00:00+00:00"},
        "name": HOSTILE,
        "email": "tutor@example.com",
        "locale": "en",
    }
    message = build_message(row, settings)
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Bcc"] is None and len(parsed.get_all("To")) == 1
    assert message["To"].addresses[0].addr_spec == "tutor@example.com"
    assert message["Message-ID"] == "<astegni-outbox-5@astegni.local>"


@pytest.mark.parametrize(
    ("url", "config"),
    [
        ("smtp://127.0.0.1:1025", SmtpConfig("127.0.0.1", 1025, None, None, False, False)),
        ("smtp://mail.example", SmtpConfig("mail.example", 25, None, None, False, False)),
        ("smtp://u%40x:p%3Aw@mail.example:587", SmtpConfig("mail.example", 587, "u@x", "p:w", False, True)),
        ("smtp://mail.example:587?starttls=1", SmtpConfig("mail.example", 587, None, None, False, True)),
        ("smtp://u:p@mail.example:25?starttls=0", SmtpConfig("mail.example", 25, "u", "p", False, False)),
        ("smtps://u:p@mail.example", SmtpConfig("mail.example", 465, "u", "p", True, False)),
    ],
)
def test_smtp_url_forms(url: str, config: SmtpConfig):
    assert parse_smtp_url(url) == config


@pytest.mark.parametrize("url", ["http://mail.example", "smtp://", "mail.example:25"])
def test_a_bad_smtp_url_is_refused(url: str):
    with pytest.raises(ValueError):
        parse_smtp_url(url)


def test_a_bad_smtp_url_setting_is_refused_at_start_up():
    with pytest.raises(ValueError, match="SMTP_URL"):
        make_settings("postgresql://unused/db", smtp_url="http://mail.example")
    assert make_settings("postgresql://unused/db", smtp_url="").smtp_url is None
