"""Each email rendered at send time, in the recipient's language (users.locale), from the data
its outbox row holds: templates/<locale>/<template>.txt (its `subject` set at the top) and .html
(autoescaped: names, messages and reasons come from users)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from astegni.core.settings import Settings
from astegni.i18n import ethiopian

TEMPLATES = Path(__file__).resolve().parent / "templates"
LOCALES = ("en", "am")

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

# The template of each kind; the four outcomes of a request share one.
_TEMPLATE = {
    "request_created": "request_created",
    "request_accepted": "request_update",
    "request_rejected": "request_update",
    "request_cancelled": "request_update",
    "request_expired": "request_update",
    "chat_digest": "chat_digest",
}
# The page each kind links to.
_PAGE = {"chat_digest": "inbox.html"}
_DEFAULT_PAGE = "requests.html"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(kind: str, locale: str, context: dict[str, Any]) -> Rendered:
    locale = locale if locale in LOCALES else "en"
    name = _TEMPLATE[kind]
    context = context | {"locale": locale, "kind": kind}
    text = _env.get_template(f"{locale}/{name}.txt").make_module(context)
    html = _env.get_template(f"{locale}/{name}.html").render(context)
    # One line, whatever a name in it holds: a header never carries a line break.
    subject = " ".join(str(text.subject).split())
    return Rendered(subject=subject, text=str(text).strip() + "\n", html=html)


def format_date(value: str | None, locale: str, settings: Settings) -> str:
    """The date of an ISO timestamp (as the outbox's jsonb holds it), on the calendar day where
    the service runs; an Amharic reader gets the Ethiopian date and the Gregorian one after it."""
    if value is None:
        return ""
    day = dt.datetime.fromisoformat(value).astimezone(ZoneInfo(settings.default_timezone))
    if locale == "am":
        return f"{ethiopian.format_date(day, 'am')} ዓ.ም. ({ethiopian.format_date(day, 'en')})"
    return ethiopian.format_date(day, "en")


def build_message(row: dict[str, Any], settings: Settings) -> EmailMessage:
    """The email of one claimed outbox row (its recipient's columns joined by the claim)."""
    data = row["data"]
    context = dict(data) | {
        "name": row["name"],
        "recipient_id": row["user_id"],
        "link": f"{settings.public_base_url.rstrip('/')}/{_PAGE.get(row['kind'], _DEFAULT_PAGE)}",
        "created_on": format_date(data.get("created_at"), row["locale"], settings),
        "changed_on": format_date(data.get("changed_at"), row["locale"], settings),
    }
    rendered = render(row["kind"], row["locale"], context)
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = settings.email_from
    message["To"] = Address(display_name=" ".join(row["name"].split()), addr_spec=row["email"])
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    # Derived from the row: a message sent twice (the one window, docs/notifications.md) carries
    # the same id, so that mail systems can drop the second.
    message["Message-ID"] = f"<astegni-outbox-{row['id']}@{_sender_domain(settings)}>"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    # After the parts: making the alternative moves every Content-* header into the first part.
    message["Content-Language"] = row["locale"]
    return message


def _sender_domain(settings: Settings) -> str:
    address = parseaddr(settings.email_from)[1]
    return address.rpartition("@")[2] or "astegni.local"
