"""Every string a page shows comes from both catalogs, and every email exists in both languages."""

from __future__ import annotations

import json
import re
from pathlib import Path

from astegni.notifications.render import LOCALES, TEMPLATES

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
ETHIOPIC = re.compile(r"[\u1200-\u137f]")
# Keys built at run time from a value: the prefix and every value it takes.
FAMILIES = {
    "status.": ["pending", "accepted", "rejected", "cancelled", "expired"],
    "role.": ["student", "parent", "tutor"],
    "format.": ["online", "in_person", "hybrid"],
    "day.": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "day.short.": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}


def page_catalog(lang: str) -> dict[str, str]:
    return json.loads((STATIC / "i18n" / f"{lang}.json").read_text())


def keys_used_by_pages() -> set[str]:
    used = set()
    for path in (STATIC / "js").glob("*.js"):
        used |= set(re.findall(r"\bT\('([^']+)'", path.read_text()))
        used |= set(re.findall(r"I18n\.t\('([^']+)'", path.read_text()))
    for path in STATIC.glob("*.html"):
        used |= set(re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', path.read_text()))
    prefixes = {key for key in used if key.endswith(".")}
    assert prefixes <= set(FAMILIES), prefixes - set(FAMILIES)  # T('x.' + value) needs a family
    for prefix, values in FAMILIES.items():
        used |= {prefix + value for value in values}
    return used - prefixes


def test_both_page_catalogs_have_the_same_keys_and_no_empty_text() -> None:
    en, am = page_catalog("en"), page_catalog("am")
    assert set(en) == set(am), set(en) ^ set(am)
    for key in en:
        assert en[key].strip() and am[key].strip(), key
        assert set(PLACEHOLDER.findall(en[key])) == set(PLACEHOLDER.findall(am[key])), key


def test_amharic_is_written_in_ethiopic_script() -> None:
    am = page_catalog("am")
    latin_only = [key for key, text in am.items() if not ETHIOPIC.search(text)]
    assert latin_only == [], latin_only


def test_every_key_a_page_uses_is_in_the_catalogs() -> None:
    used = keys_used_by_pages()
    assert len(used) > 150
    missing = sorted(used - set(page_catalog("en")))
    assert missing == [], missing


def test_the_pages_show_no_hard_coded_english_sentence() -> None:
    """A quoted capitalised phrase of two words or more in a page script is a string a reader
    sees without its translation (the few that are not are listed)."""
    allowed = {"Failed to fetch", "Session request", "Content-Type"}
    for path in (STATIC / "js").glob("*.js"):
        if path.name == "i18n.js":
            continue
        for phrase in re.findall(r"'([A-Z][a-z]+(?: [a-z]+)+[.…]?)'", path.read_text()):
            assert phrase in allowed, f"{path.name}: {phrase!r}"


def test_every_email_template_exists_in_both_languages_with_amharic_text() -> None:
    """The emails' catalog is a template folder per language (astegni/notifications/templates)."""
    en = {path.name for path in (TEMPLATES / "en").iterdir()}
    am = {path.name for path in (TEMPLATES / "am").iterdir()}
    assert en and en == am, en ^ am
    for name in am:
        assert ETHIOPIC.search((TEMPLATES / "am" / name).read_text()), name
    assert set(LOCALES) == {"en", "am"}
