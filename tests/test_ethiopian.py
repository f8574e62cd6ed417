"""The Ethiopian calendar against known dates, and round trips over decades of days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from astegni.i18n.ethiopian import EthiopianDate, format_date, from_ethiopian, is_leap, to_ethiopian

KNOWN = [
    # Meskerem 1 falls on September 11, or on September 12 before a Gregorian leap year.
    (date(2026, 9, 10), EthiopianDate(2018, 13, 5)),
    (date(2026, 9, 11), EthiopianDate(2019, 1, 1)),
    (date(2023, 9, 11), EthiopianDate(2015, 13, 6)),  # 2015 is an Ethiopian leap year
    (date(2023, 9, 12), EthiopianDate(2016, 1, 1)),
    (date(2027, 9, 11), EthiopianDate(2019, 13, 6)),
    (date(2027, 9, 12), EthiopianDate(2020, 1, 1)),
    (date(2024, 9, 11), EthiopianDate(2017, 1, 1)),
    (date(2026, 11, 29), EthiopianDate(2019, 3, 20)),
    # Genna (Ethiopian Christmas) is Tahsas 29, January 7 in these years.
    (date(2025, 1, 7), EthiopianDate(2017, 4, 29)),
    (date(2026, 1, 7), EthiopianDate(2018, 4, 29)),
    # Adwa victory day: Yekatit 23 = March 2 (1896 was the Ethiopian year 1888).
    (date(1896, 3, 1), EthiopianDate(1888, 6, 23)),
    (date(2000, 1, 1), EthiopianDate(1992, 4, 22)),
    (date(2024, 2, 29), EthiopianDate(2016, 6, 21)),
]


@pytest.mark.parametrize(("gregorian", "ethiopian"), KNOWN)
def test_known_dates_convert_both_ways(gregorian: date, ethiopian: EthiopianDate) -> None:
    assert to_ethiopian(gregorian) == ethiopian
    assert from_ethiopian(*ethiopian) == gregorian


def test_pagume_has_six_days_only_in_a_leap_year() -> None:
    assert is_leap(2015) and not is_leap(2016) and is_leap(2019)
    assert from_ethiopian(2019, 13, 6) == date(2027, 9, 11)
    with pytest.raises(ValueError):
        from_ethiopian(2018, 13, 6)
    for bad in [(2018, 0, 1), (2018, 14, 1), (2018, 1, 31), (2018, 1, 0), (0, 1, 1)]:
        with pytest.raises(ValueError):
            from_ethiopian(*bad)


def test_every_day_round_trips_and_follows_the_day_before() -> None:
    day = date(1900, 1, 1)
    previous = to_ethiopian(day - timedelta(days=1))
    while day < date(2101, 1, 1):
        eth = to_ethiopian(day)
        assert from_ethiopian(*eth) == day
        if eth.day > 1:
            assert eth == (previous.year, previous.month, previous.day + 1)
        elif eth.month > 1:
            assert (eth.year, eth.month - 1) == previous[:2]
            assert previous.day == 30
        else:
            assert previous == (eth.year - 1, 13, 6 if is_leap(eth.year - 1) else 5)
        previous = eth
        day += timedelta(days=1)


def test_format_date_speaks_the_readers_calendar() -> None:
    assert format_date(date(2026, 11, 29), "am") == "ኅዳር 20 2019"
    assert format_date(date(2026, 11, 29), "en") == "November 29, 2026"
    assert format_date(date(2027, 9, 11), "am") == "ጳጉሜን 6 2019"
    moment = datetime(2026, 9, 11, 23, 30, tzinfo=UTC)
    assert format_date(moment, "am") == "መስከረም 1 2019"
    assert format_date(moment, "en") == "September 11, 2026"
