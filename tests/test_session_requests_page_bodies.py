"""The bodies the original Astegni view-tutor page builds in submitPackageRequest(): every field
present, nulls for what was not chosen, its schedule summary, years and months, and the start
and end time inputs' defaults sent whatever the schedule type. Each is accepted and kept with the
request and on its card; the extras it may send are bounded."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.requests import URL, counts, rows, scalar

SHARED = "Shared (cost-sharing) sessions are not offered yet"


def page_body(tutor, student, **fields: Any) -> dict[str, Any]:
    """What the page sends when nothing is chosen: every key, nulls, the time inputs' defaults."""
    return {
        "tutor_id": tutor.role_ids["tutor"],
        "package_id": tutor.extra["packages"][0]["id"],
        "preferred_schedule": None,
        "requested_to_id": student.role_ids["student"],
        "schedule_type": None,
        "year_range": None,
        "months": None,
        "days": None,
        "specific_dates": None,
        "start_time": "09:00",
        "end_time": "17:00",
        "counter_offer_price": None,
    } | fields


def _stored(db) -> tuple[dict[str, Any], dict[str, Any]]:
    [request] = rows(
        db,
        "SELECT schedule_type, days, specific_dates, start_time, end_time, preferred_schedule,"
        " year_range, months, num_students, package_price, counter_offer_price FROM requested_sessions",
    )
    card = scalar(db, "SELECT media_metadata FROM chat_messages WHERE message_type = 'session_request'")
    return request, card


def test_recurring_with_years_months_and_days(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    summary = "Years: 2026, 2027 | Months: January, March | Days: Monday, Thursday | Time: 09:00 - 17:00"
    body = page_body(
        tutor,
        student,
        schedule_type="recurring",
        year_range=[2026, 2027],
        months=["January", "March"],
        days=["Monday", "Thursday"],
        preferred_schedule=summary,
    )
    response = client.post(URL, json=body, headers=student.headers)
    assert response.status_code == 200, response.text
    request, card = _stored(db)
    assert request | {"start_time": str(request["start_time"])} == {
        "schedule_type": "recurring",
        "days": ["Monday", "Thursday"],
        "specific_dates": [],
        "start_time": "09:00:00",
        "end_time": dt.time(17, 0),
        "preferred_schedule": summary,
        "year_range": [2026, 2027],
        "months": ["January", "March"],
        "num_students": 1,
        "package_price": pytest.approx(250),
        "counter_offer_price": None,
    }
    assert (
        card
        | {
            "preferred_schedule": summary,
            "year_range": [2026, 2027],
            "months": ["January", "March"],
            "num_students": 1,
            "package_price": 250.0,
            "hourly_rate": 250.0,
            "schedule_type": "recurring",
        }
        == card
    )


def test_recurring_with_days_but_no_times(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    body = page_body(
        tutor, student, schedule_type="recurring", days=["Saturday"], start_time=None, end_time=None
    )
    response = client.post(URL, json=body, headers=student.headers)
    assert response.status_code == 200, response.text
    request, card = _stored(db)
    assert (request["days"], request["start_time"], request["end_time"]) == (["Saturday"], None, None)
    assert (card["start_time"], card["end_time"]) == (None, None)


def test_specific_dates_as_the_page_lists_them(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    today = dt.datetime.now(ZoneInfo("Africa/Addis_Ababa")).date()
    dates = [str(today + dt.timedelta(days=d)) for d in (3, 4, 5)]
    summary = f"Specific Dates: {', '.join(dates)} | Time: 09:00 - 17:00"
    body = page_body(
        tutor, student, schedule_type="specific_dates", specific_dates=dates, preferred_schedule=summary
    )
    response = client.post(URL, json=body, headers=student.headers)
    assert response.status_code == 200, response.text
    request, card = _stored(db)
    assert [str(d) for d in request["specific_dates"]] == dates
    assert (request["schedule_type"], request["days"], request["year_range"], request["months"]) == (
        "specific_dates",
        [],
        [],
        [],
    )
    assert card["specific_dates"] == dates and card["preferred_schedule"] == summary


def test_no_schedule_chosen_is_arranged_in_the_chat(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    response = client.post(
        URL, json=page_body(tutor, student, counter_offer_price=199.5), headers=student.headers
    )
    assert response.status_code == 200, response.text
    request, card = _stored(db)
    assert (request["schedule_type"], request["days"], request["specific_dates"]) == (None, [], [])
    assert str(request["start_time"]) == "09:00:00"
    assert (card["schedule_type"], card["counter_offer_price"]) == (None, 199.5)
    listed = client.get(f"{URL}/my-requests", headers=student.headers).json()
    assert (listed[0]["schedule_type"], listed[0]["package_price"]) == (None, 250.0)


def test_an_empty_schedule_type_string_is_none(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    response = client.post(URL, json=page_body(tutor, student, schedule_type=""), headers=student.headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("shared", [None, []])
def test_the_extras_of_one_student(client, factory, db, shared):
    student, tutor = factory.student(), factory.tutor()
    body = page_body(
        tutor, student, num_students=1, shared_students=shared, session_format="online", notes="x"
    )
    assert client.post(URL, json=body, headers=student.headers).status_code == 200


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"shared_students": [{"email": "friend@example.com"}]}, SHARED),
        ({"shared_students": [17]}, SHARED),
        ({"shared_students": "friend"}, SHARED),
        ({"num_students": 2}, SHARED),
        ({"num_students": 0}, "greater than or equal to 1"),
        ({"preferred_schedule": "x" * 1001}, "at most 1000 characters"),
        ({"year_range": [2026, 2027, 2028, 2029, 2030, 2031]}, "at most 5 items"),
        ({"year_range": [1999]}, "greater than or equal to 2000"),
        ({"year_range": [2026, 2026]}, "repeat a year"),
        ({"year_range": ["soon"]}, "valid integer"),
        ({"months": ["Smarch"]}, "month names"),
        ({"months": ["May", "may"]}, "listed twice"),
        ({"months": ["January"] * 13}, "at most 12 items"),
        ({"start_time": "09:00", "end_time": None}, "go together"),
        ({"start_time": "17:00", "end_time": "09:00"}, "before end_time"),
        ({"schedule_type": "recurring"}, "needs days"),
        ({"schedule_type": None, "days": ["Monday"], "specific_dates": ["2099-01-01"]}, "only to"),
    ],
)
def test_out_of_bounds_extras_are_422_and_store_nothing(client, factory, db, fields, fragment):
    student, tutor = factory.student(), factory.tutor()
    response = client.post(URL, json=page_body(tutor, student, **fields), headers=student.headers)
    assert response.status_code == 422, response.text
    assert fragment in response.text
    assert counts(db) == dict.fromkeys(counts(db), 0)


def test_openapi_declares_the_page_fields(client):
    operation = client.get("/openapi.json").json()["paths"]["/api/session-requests"]["post"]
    properties = operation["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"preferred_schedule", "year_range", "months", "num_students", "shared_students"} <= set(
        properties
    )
    assert "403" in operation["responses"] and "blocked" in operation["responses"]["403"]["description"]
