"""Gregorian <-> Ethiopian calendar, and dates written for an English or an Amharic reader.

The Ethiopian calendar has twelve months of 30 days and a thirteenth, Pagume, of 5 days (6 in
the year before a Gregorian leap year: Ethiopian year Y is leap when Y % 4 == 3). Both sides go
through the Julian Day Number, so the conversion is two small exact formulas and needs no
library. Years are Amete Mihret (the civil era); only years >= 1 on both sides are handled.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

# JDN of the day before Meskerem 1 of year 1, counted the way the formulas below expect.
_EPOCH = 1723856
# date.toordinal() of 0001-01-01 is 1; its Julian Day Number is 1721426.
_ORDINAL_TO_JDN = 1721425

MONTHS_AM = (
    "መስከረም",
    "ጥቅምት",
    "ኅዳር",
    "ታኅሣሥ",
    "ጥር",
    "የካቲት",
    "መጋቢት",
    "ሚያዝያ",
    "ግንቦት",
    "ሰኔ",
    "ሐምሌ",
    "ነሐሴ",
    "ጳጉሜን",
)
# Spelled out here: strftime('%B') would follow the process locale.
MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


class EthiopianDate(NamedTuple):
    year: int
    month: int  # 1..13
    day: int  # 1..30 (1..5 or 1..6 in month 13)


def is_leap(year: int) -> bool:
    """True when the Ethiopian year has a sixth day of Pagume."""
    return year % 4 == 3


def to_ethiopian(value: date) -> EthiopianDate:
    """The Ethiopian date of a Gregorian date (a datetime counts by its own calendar day)."""
    offset = value.toordinal() + _ORDINAL_TO_JDN - _EPOCH
    rest = offset % 1461
    day_of_year = rest % 365 + 365 * (rest // 1460)
    year = 4 * (offset // 1461) + rest // 365 - rest // 1460
    return EthiopianDate(year, day_of_year // 30 + 1, day_of_year % 30 + 1)


def from_ethiopian(year: int, month: int, day: int) -> date:
    """The Gregorian date of an Ethiopian date; ValueError for a day that does not exist."""
    last = 30 if month < 13 else (6 if is_leap(year) else 5)
    if year < 1 or not 1 <= month <= 13 or not 1 <= day <= last:
        raise ValueError(f"no Ethiopian date {year}-{month}-{day}")
    jdn = _EPOCH + 365 * year + year // 4 + 30 * month + day - 31
    return date.fromordinal(jdn - _ORDINAL_TO_JDN)


def format_date(value: date | datetime, locale: str) -> str:
    """The date for a reader: 'am' -> Ethiopian (ኅዳር 20 2019), anything else -> 'November 29, 2026'.

    A datetime is written by its own calendar day: convert it to the reader's zone first.
    """
    day = value.date() if isinstance(value, datetime) else value
    if locale == "am":
        eth = to_ethiopian(day)
        return f"{MONTHS_AM[eth.month - 1]} {eth.day} {eth.year}"
    return f"{MONTHS_EN[day.month - 1]} {day.day}, {day.year}"
