"""Languages on the server: translate(locale, message_id, **params) from the .po catalogs under
astegni/i18n/locales/<lang>/LC_MESSAGES/messages.po, and dates for the reader (ethiopian.py).

The .po files are read with babel at first use, so a fresh clone needs no compile step. Ids
are stable keys (`email.request_created.subject`); `{name}` placeholders are filled from params.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from astegni.i18n.ethiopian import format_date

LOCALES = ("en", "am")
DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locales"


@cache
def catalog(locale: str) -> dict[str, str]:
    """The non-empty messages of one language, by id."""
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        po = read_po(fh, locale=locale)
    return {message.id: message.string for message in po if message.id and message.string}


def translate(locale: str, message_id: str, **params: Any) -> str:
    """The message in the reader's language, else in English, else its id; params filled in.

    A KeyError for a placeholder the caller did not give: a missing name is a bug to see."""
    lang = locale if locale in LOCALES else DEFAULT_LOCALE
    text = catalog(lang).get(message_id) or catalog(DEFAULT_LOCALE).get(message_id) or message_id
    return text.format_map(params) if params else text


__all__ = ["LOCALES", "catalog", "format_date", "translate"]
