"""POST /api/session-requests: the answer of every row of the contract's error table, the data
it writes, validation, parents and children, idempotency keys and the rate limit."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import psycopg2
import pytest

from astegni.core.queries import fetch_one
from astegni.core.security import Claims
from astegni.session_requests import service as sr
from astegni.session_requests.models import SessionRequestIn
from astegni.session_requests.service import duplicate_detail
from tests.support.live import app_client
from tests.support.requests import URL, backdate, counts, request_body, rows, scalar

SENTENCE = re.compile(
    r"^Request already sent\. You have a pending request for this package \(Request ID: (\d+), "
    r"sent on (January|February|March|April|May|June|July|August|September|October|November|December)"
    r" ([1-9]|[12]\d|3[01]), (\d{4})\)\. Please wait for the tutor's response\.$"
)


def test_the_duplicate_sentence_word_for_word():
    created = dt.datetime(2026, 1, 31, 10, 30, tzinfo=dt.UTC)
    assert duplicate_detail(123, created, "Africa/Addis_Ababa") == (
        "Request already sent. You have a pending request for this package (Request ID: 123, sent on "
        "January 31, 2026). Please wait for the tutor's response."
    )
    # The date is the one where the request was made: 22:30 UTC is already the next day in Addis.
    late = dt.datetime(2026, 1, 30, 22, 30, tzinfo=dt.UTC)
    assert "sent on January 31, 2026" in duplicate_detail(1, late, "Africa/Addis_Ababa")
    assert "sent on January 30, 2026" in duplicate_detail(1, late, "UTC")


def test_create_writes_request_conversation_and_card(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    response = client.post(URL, json=request_body(tutor), headers=student.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"success", "message", "request_id", "conversation_id", "message_id", "created_at"}
    assert body["success"] is True
    assert body["message"] == "Session request sent successfully"
    assert dt.datetime.fromisoformat(body["created_at"]).utcoffset() == dt.timedelta(0)

    [row] = rows(db, "SELECT * FROM requested_sessions")
    assert row["id"] == body["request_id"]
    assert (row["requester_id"], row["requester_type"]) == (student.id, "student")
    assert row["requested_to_id"] == student.role_ids["student"]
    assert row["tutor_id"] == tutor.role_ids["tutor"]
    assert row["status"] == "pending"
    assert row["days"] == ["Monday", "Wednesday"]
    assert str(row["start_time"]) == "14:00:00" and str(row["end_time"]) == "16:00:00"
    assert str(row["counter_offer_price"]) == "150.00"
    assert row["timezone"] == "Africa/Addis_Ababa"  # settings.default_timezone
    assert (row["conversation_id"], row["message_id"]) == (body["conversation_id"], body["message_id"])
    assert row["expires_at"] - row["created_at"] == dt.timedelta(days=7)

    [conversation] = rows(db, "SELECT * FROM conversations")
    assert conversation["id"] == body["conversation_id"]
    assert conversation["type"] == "direct"
    assert conversation["created_by_user_id"] == student.id
    assert conversation["last_message_at"] is not None
    members = rows(db, "SELECT user_id FROM conversation_participants ORDER BY user_id")
    assert [m["user_id"] for m in members] == sorted([student.id, tutor.id])

    [message] = rows(db, "SELECT * FROM chat_messages")
    assert message["id"] == body["message_id"]
    assert message["message_type"] == "session_request"
    assert message["sender_user_id"] == student.id
    meta = message["media_metadata"]
    package = tutor.extra["packages"][0]
    assert (
        meta
        | {
            "session_request_id": body["request_id"],
            "status": "pending",
            "tutor_id": tutor.role_ids["tutor"],
            "package_id": package["id"],
            "package_name": package["name"],
            "hourly_rate": 250.0,
            "requested_to_id": student.role_ids["student"],
            "requester_type": "student",
            "schedule_type": "recurring",
            "days": ["Monday", "Wednesday"],
            "specific_dates": [],
            "start_time": "14:00",
            "end_time": "16:00",
            "counter_offer_price": 150.0,
        }
        == meta
    )


def test_the_card_keeps_the_package_as_it_was(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    response = client.post(URL, json=request_body(tutor), headers=student.headers)
    with db.transaction() as cur:
        cur.execute("UPDATE tutor_packages SET name = 'Renamed', hourly_rate = 999")
    meta = scalar(db, "SELECT media_metadata FROM chat_messages WHERE id = %s", response.json()["message_id"])
    assert (meta["package_name"], meta["hourly_rate"]) == ("Package 1", 250.0)


def test_duplicate_pending_request_is_409_with_the_sentence(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    first = client.post(URL, json=request_body(tutor), headers=student.headers).json()
    before = counts(db)

    again = client.post(URL, json=request_body(tutor, message="again?"), headers=student.headers)

    assert again.status_code == 409
    body = again.json()
    assert set(body) == {"detail", "code", "existing_request_id"}
    assert body["code"] == "duplicate_pending_request"
    assert body["existing_request_id"] == first["request_id"]
    match = SENTENCE.match(body["detail"])
    assert match, body["detail"]
    assert int(match.group(1)) == first["request_id"]
    created = dt.datetime.fromisoformat(first["created_at"]).astimezone(ZoneInfo("Africa/Addis_Ababa"))
    assert match.group(2, 3, 4) == (created.strftime("%B"), str(created.day), str(created.year))
    assert counts(db) == before  # nothing written


def test_a_duplicate_of_a_request_without_a_conversation_opens_it(client, factory, db):
    # session_request_create finds or creates the pair's conversation before the duplicate
    # check. A pending request with none (legacy data; here its conversation was deleted) gets
    # its 409, and the conversation the next request would open anyway is there.
    student, tutor = factory.student(), factory.tutor()
    first = client.post(URL, json=request_body(tutor), headers=student.headers).json()
    with db.transaction() as cur:
        cur.execute("DELETE FROM conversations")  # the request keeps conversation_id = NULL

    again = client.post(URL, json=request_body(tutor), headers=student.headers)

    assert again.status_code == 409
    assert again.json()["existing_request_id"] == first["request_id"]
    counted = counts(db)
    assert (counted["requested_sessions"], counted["chat_messages"]) == (1, 0)
    assert (counted["conversations"], counted["conversation_participants"]) == (1, 2)
    other = client.post(URL, json=request_body(tutor, package=1), headers=student.headers).json()
    assert other["conversation_id"] == scalar(db, "SELECT id FROM conversations")


def test_duplicate_sentence_dates_the_request_in_its_timezone(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    first = client.post(URL, json=request_body(tutor), headers=student.headers).json()
    with db.transaction() as cur:
        cur.execute(
            "UPDATE requested_sessions SET created_at = '2026-01-30 22:30+00' WHERE id = %s",
            (first["request_id"],),
        )
    again = client.post(URL, json=request_body(tutor), headers=student.headers)
    assert again.json()["detail"] == (
        f"Request already sent. You have a pending request for this package (Request ID: "
        f"{first['request_id']}, sent on January 31, 2026). Please wait for the tutor's response."
    )


def test_other_packages_of_the_tutor_share_the_one_conversation(client, factory, db):
    student, tutor = factory.student(), factory.tutor(packages=3)
    answers = [
        client.post(URL, json=request_body(tutor, package=i), headers=student.headers) for i in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.json()["conversation_id"] for a in answers}) == 1
    assert counts(db) == {
        "requested_sessions": 3,
        "conversations": 1,
        "conversation_participants": 2,
        "chat_messages": 3,
    }


def test_a_create_writes_each_row_once(client, factory, db_url):
    """The request row is inserted complete (no second version to fill in its conversation and
    message), and a conversation that exists gets no participant writes: the create's write
    counts, read inside its own transaction on a fresh connection (pg_stat_xact_user_tables also
    shows a backend's earlier counts that it has not reported yet)."""
    student, tutor = factory.student(), factory.tutor()
    client.post(URL, json=request_body(tutor, package=0), headers=student.headers)  # the conversation
    body = SessionRequestIn.model_validate(request_body(tutor, package=1))
    params = sr.create_params(Claims(student.id, "student", "access"), body.db_params("UTC"), 0, 3600)
    conn = psycopg2.connect(db_url)
    try:
        with conn, conn.cursor() as cur:
            assert fetch_one(cur, sr.queries.sr_create, params)[0] == "created"
            cur.execute(
                """SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables
                    WHERE n_tup_ins + n_tup_upd + n_tup_del > 0"""
            )
            written = {relname: counts for relname, *counts in cur.fetchall()}
    finally:
        conn.close()
    assert written == {
        "requested_sessions": [1, 0, 0],
        "chat_messages": [1, 0, 0],
        "conversations": [0, 1, 0],  # last_message_at
        "email_outbox": [1, 0, 0],  # the tutor's email, sent after the commit
    }


# ---------------------------------------------------------------------------- the error table


def test_no_token_or_a_bad_one_is_401(client, factory):
    tutor = factory.tutor()
    assert client.post(URL, json=request_body(tutor)).status_code == 401
    bad = client.post(URL, json=request_body(tutor), headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"


def test_deactivated_user_is_401_and_nothing_is_written(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    with db.transaction() as cur:
        cur.execute("UPDATE users SET is_active = false WHERE id = %s", (student.id,))
    response = client.post(URL, json=request_body(tutor), headers=student.headers)
    assert response.status_code == 401
    assert counts(db)["requested_sessions"] == 0


def test_missing_student_profile_is_400(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    with db.transaction() as cur:
        cur.execute("DELETE FROM student_profiles WHERE user_id = %s", (student.id,))
    response = client.post(URL, json=request_body(tutor), headers=student.headers)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Student profile not found")


def test_missing_parent_profile_is_400(client, factory, db):
    parent, tutor = factory.parent(children=1), factory.tutor()
    child = parent.extra["children"][0]
    with db.transaction() as cur:
        cur.execute("DELETE FROM parent_profiles WHERE user_id = %s", (parent.id,))
    body = request_body(tutor, requested_to_id=child.role_ids["student"])
    response = client.post(URL, json=body, headers=parent.headers)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Parent profile not found")


def test_tutor_role_is_403(client, factory, db):
    tutor, other = factory.tutor(), factory.tutor()
    response = client.post(URL, json=request_body(other), headers=tutor.headers)
    assert response.status_code == 403
    assert counts(db)["requested_sessions"] == 0


def test_unknown_tutor_is_404(client, factory):
    student, tutor = factory.student(), factory.tutor()
    response = client.post(URL, json=request_body(tutor, tutor_id=999_999), headers=student.headers)
    assert (response.status_code, response.json()["detail"]) == (404, "Tutor not found")


def test_deactivated_tutor_is_404(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    with db.transaction() as cur:
        cur.execute("UPDATE users SET is_active = false WHERE id = %s", (tutor.id,))
    response = client.post(URL, json=request_body(tutor), headers=student.headers)
    assert (response.status_code, response.json()["detail"]) == (404, "Tutor not found")


@pytest.mark.parametrize("case", ["unknown", "inactive", "another tutor's"])
def test_package_not_found_is_404(client, factory, db, case):
    student, tutor, other = factory.student(), factory.tutor(), factory.tutor()
    package_id = {
        "unknown": 999_999,
        "inactive": tutor.extra["packages"][1]["id"],
        "another tutor's": other.extra["packages"][0]["id"],
    }[case]
    with db.transaction() as cur:
        cur.execute(
            "UPDATE tutor_packages SET is_active = false WHERE id = %s", (tutor.extra["packages"][1]["id"],)
        )
    response = client.post(URL, json=request_body(tutor, package_id=package_id), headers=student.headers)
    assert (response.status_code, response.json()["detail"]) == (404, "Package not found")
    assert counts(db)["requested_sessions"] == 0


def test_own_tutor_profile_is_400(client, factory):
    both = factory.user(["student", "tutor"])
    both.extra["packages"] = [factory.package(both)]
    factory.as_role(both, "student")
    response = client.post(URL, json=request_body(both), headers=both.headers)
    assert response.status_code == 400
    assert "own tutor profile" in response.json()["detail"]


# ---------------------------------------------------------------------------- parents


def test_parent_books_for_each_of_their_children(client, factory, db):
    parent, tutor = factory.parent(children=2), factory.tutor()
    first, second = (child.role_ids["student"] for child in parent.extra["children"])
    a = client.post(URL, json=request_body(tutor, requested_to_id=first), headers=parent.headers)
    b = client.post(URL, json=request_body(tutor, requested_to_id=second), headers=parent.headers)
    again = client.post(URL, json=request_body(tutor, requested_to_id=first), headers=parent.headers)

    assert (a.status_code, b.status_code, again.status_code) == (200, 200, 409)
    assert again.json()["existing_request_id"] == a.json()["request_id"]
    assert a.json()["conversation_id"] == b.json()["conversation_id"]
    saved = rows(
        db, "SELECT requester_id, requester_type, requested_to_id FROM requested_sessions ORDER BY id"
    )
    assert saved == [
        {"requester_id": parent.id, "requester_type": "parent", "requested_to_id": first},
        {"requester_id": parent.id, "requester_type": "parent", "requested_to_id": second},
    ]
    meta = scalar(db, "SELECT media_metadata FROM chat_messages WHERE id = %s", a.json()["message_id"])
    assert meta["requested_to_name"] == parent.extra["children"][0].full_name


def test_parent_must_name_the_child(client, factory, db):
    parent, tutor = factory.parent(children=1), factory.tutor()
    response = client.post(URL, json=request_body(tutor), headers=parent.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "requested_to_id"]
    assert counts(db)["requested_sessions"] == 0


def test_a_strangers_child_is_403_and_nothing_is_written(client, factory, db):
    parent, stranger, tutor = factory.parent(children=1), factory.parent(children=1), factory.tutor()
    theirs = stranger.extra["children"][0].role_ids["student"]
    response = client.post(URL, json=request_body(tutor, requested_to_id=theirs), headers=parent.headers)
    assert response.status_code == 403
    assert counts(db) == dict.fromkeys(counts(db), 0)


def test_one_requester_across_roles(client, factory, db):
    """A user who is both student and parent is one requester (users.id) in both roles."""
    person, tutor = factory.user(["student", "parent"]), factory.tutor()
    child = factory.child(person)
    as_student = client.post(URL, json=request_body(tutor), headers=person.headers)
    factory.as_role(person, "parent")
    for_child = client.post(
        URL, json=request_body(tutor, requested_to_id=child.role_ids["student"]), headers=person.headers
    )
    assert (as_student.status_code, for_child.status_code) == (200, 200)
    saved = rows(db, "SELECT requester_id, requester_type FROM requested_sessions ORDER BY id")
    assert saved == [
        {"requester_id": person.id, "requester_type": "student"},
        {"requester_id": person.id, "requester_type": "parent"},
    ]
    assert as_student.json()["conversation_id"] == for_child.json()["conversation_id"]


def test_a_student_cannot_book_for_someone_else(client, factory, db):
    student, other, tutor = factory.student(), factory.student(), factory.tutor()
    body = request_body(tutor, requested_to_id=other.role_ids["student"])
    assert client.post(URL, json=body, headers=student.headers).status_code == 200
    assert scalar(db, "SELECT requested_to_id FROM requested_sessions") == student.role_ids["student"]


# ---------------------------------------------------------------------------- what the client cannot set


def test_client_sent_status_and_requester_have_no_effect(client, factory, db):
    student, victim, tutor = factory.student(), factory.student(), factory.tutor()
    body = request_body(
        tutor,
        status="accepted",
        requester_id=victim.id,
        requester_type="parent",
        id=424242,
        conversation_id=1,
        expires_at="2099-01-01T00:00:00Z",
        responded_at="2026-01-01T00:00:00Z",
    )
    response = client.post(URL, json=body, headers=student.headers)
    assert response.status_code == 200
    [row] = rows(db, "SELECT * FROM requested_sessions")
    assert row["id"] != 424242
    assert (row["status"], row["requester_id"], row["requester_type"]) == ("pending", student.id, "student")
    assert row["responded_at"] is None
    assert row["expires_at"] - row["created_at"] == dt.timedelta(days=7)


def test_sql_looking_strings_are_stored_as_data(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    evil = "'); DROP TABLE requested_sessions; -- %s %(x)s \\ $1"
    response = client.post(URL, json=request_body(tutor, message=evil), headers=student.headers)
    assert response.status_code == 200
    assert scalar(db, "SELECT message FROM requested_sessions") == evil
    assert scalar(db, "SELECT content FROM chat_messages") == evil
    assert scalar(db, "SELECT media_metadata->>'message' FROM chat_messages") == evil


# ---------------------------------------------------------------------------- validation


def _today(zone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(zone)).date()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"days": ["Funday"]}, "weekday names"),
        ({"days": ["Monday", "monday"]}, "listed twice"),
        ({"days": []}, "needs days"),
        ({"start_time": "2pm"}, "HH:MM"),
        ({"start_time": "24:00"}, "HH:MM"),
        ({"start_time": "16:00", "end_time": "14:00"}, "before end_time"),
        ({"start_time": "14:00", "end_time": "14:00"}, "before end_time"),
        ({"end_time": None}, "go together"),
        ({"schedule_type": "weekly"}, "recurring"),
        ({"schedule_type": "specific_dates", "days": [], "specific_dates": []}, "at least one date"),
        ({"specific_dates": ["2099-01-01"]}, "only to schedule_type 'specific_dates'"),
        ({"counter_offer_price": 0}, "greater than 0"),
        ({"counter_offer_price": -5}, "greater than 0"),
        ({"counter_offer_price": 1_000_000.01}, "less than or equal to 1000000"),
        ({"counter_offer_price": 150.125}, "decimal places"),
        ({"message": "x" * 2001}, "at most 2000 characters"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown timezone"),
        ({"timezone": "../../etc/passwd"}, "unknown timezone"),
        ({"tutor_id": None}, "valid integer"),
        ({"package_id": "abc"}, "valid integer"),
        ({"tutor_id": 2**31}, "less than or equal"),
        ({"message": "nul \x00 byte"}, "NUL"),
    ],
)
def test_invalid_bodies_are_422_with_a_clear_message(client, factory, db, overrides, fragment):
    student, tutor = factory.student(), factory.tutor()
    response = client.post(URL, json=request_body(tutor, **overrides), headers=student.headers)
    assert response.status_code == 422, response.text
    assert fragment in response.text
    assert counts(db)["requested_sessions"] == 0


@pytest.mark.parametrize(
    ("content", "content_type", "error"),
    [
        (b"", "application/json", {"type": "missing", "loc": ["body"], "msg": "Field required"}),
        (b'{"tutor_id": 1,', "application/json", {"type": "json_invalid", "loc": ["body"]}),
        (b"[1, 2]", "application/json", {"type": "model_type", "loc": ["body"]}),
        (b'{"tutor_id": 1}', "text/plain", {"type": "content_type", "loc": ["body"]}),
        (b'{"package_id": 1}', "application/json", {"type": "missing", "loc": ["body", "tutor_id"]}),
    ],
)
def test_bodies_that_are_not_a_request_object_are_422(client, factory, db, content, content_type, error):
    # The body is validated from its bytes (parse_body): the same 422 as elsewhere.
    student = factory.student()
    headers = student.headers | {"content-type": content_type}
    response = client.post(URL, content=content, headers=headers)
    assert response.status_code == 422, response.text
    (detail,) = [item for item in response.json()["detail"] if item["loc"] == error["loc"]]
    assert set(detail) == {"type", "loc", "msg"}  # never the input back
    assert detail.items() >= error.items()
    assert counts(db)["requested_sessions"] == 0


def test_a_json_content_type_with_parameters_or_a_suffix_is_json(client, factory):
    student, tutor = factory.student(), factory.tutor(packages=3)
    content_types = ("application/json; charset=utf-8", "application/merge-patch+json", None)
    for package, content_type in enumerate(content_types):
        headers = student.headers | ({"content-type": content_type} if content_type else {})
        response = client.post(URL, content=json.dumps(request_body(tutor, package)), headers=headers)
        assert response.status_code == 200, (content_type, response.text)


def test_the_token_is_checked_before_the_body(client):
    # No token and no valid body: 401, as for every route whose dependencies FastAPI resolves.
    response = client.post(URL, content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 401
    other_scheme = client.post(URL, content=b"{}", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert other_scheme.status_code == 401


def test_openapi_still_declares_the_body_token_and_key(client):
    operation = client.get("/openapi.json").json()["paths"]["/api/session-requests"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert operation["requestBody"]["required"] is True
    assert {"tutor_id", "package_id"} <= set(schema["required"])
    assert schema["properties"]["message"]["anyOf"][0]["maxLength"] == 2000
    assert operation["security"] == [{"OAuth2PasswordBearer": []}]
    assert [p["name"] for p in operation["parameters"]] == ["Idempotency-Key"]
    assert "HTTPValidationError" in str(operation["responses"]["422"])


@pytest.mark.parametrize(
    ("dates", "fragment"),
    [
        (lambda today: [today - dt.timedelta(days=1)], "is in the past"),
        (lambda today: [today + dt.timedelta(days=3)] * 2, "must not repeat"),
        (lambda today: [today + dt.timedelta(days=i) for i in range(61)], "at most 60"),
        (lambda today: ["2026-02-30"], "valid date"),
    ],
)
def test_invalid_specific_dates_are_422(client, factory, dates, fragment):
    student, tutor = factory.student(), factory.tutor()
    zone = "Pacific/Kiritimati"  # UTC+14: its today is often the server's tomorrow
    body = request_body(
        tutor,
        schedule_type="specific_dates",
        days=[],
        timezone=zone,
        specific_dates=[str(d) for d in dates(_today(zone))],
    )
    response = client.post(URL, json=body, headers=student.headers)
    assert response.status_code == 422, response.text
    assert fragment in response.text


def test_specific_dates_from_today_in_the_requests_timezone(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    zone = "Pacific/Kiritimati"
    today = _today(zone)
    dates = [str(today + dt.timedelta(days=2)), str(today)]
    body = request_body(
        tutor,
        schedule_type="specific_dates",
        days=[],
        specific_dates=dates,
        timezone=zone,
        start_time=None,
        end_time=None,
    )
    response = client.post(URL, json=body, headers=student.headers)
    assert response.status_code == 200, response.text
    [row] = rows(db, "SELECT specific_dates, timezone, days FROM requested_sessions")
    assert row == {
        "specific_dates": sorted(dt.date.fromisoformat(d) for d in dates),
        "timezone": zone,
        "days": [],
    }


def test_day_names_are_normalised(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    body = request_body(tutor, days=[" friday", "MONDAY"])
    assert client.post(URL, json=body, headers=student.headers).status_code == 200
    assert scalar(db, "SELECT days FROM requested_sessions") == ["Friday", "Monday"]


# ---------------------------------------------------------------------------- after a request ends


def test_new_request_allowed_once_the_pending_one_expired(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    first = client.post(URL, json=request_body(tutor), headers=student.headers).json()
    backdate(db, first["request_id"])

    # No sweep has run: the expired request does not block, and the create records its expiry.
    second = client.post(URL, json=request_body(tutor), headers=student.headers)

    assert second.status_code == 200, second.text
    statuses = rows(db, "SELECT id, status FROM requested_sessions ORDER BY id")
    assert statuses == [
        {"id": first["request_id"], "status": "expired"},
        {"id": second.json()["request_id"], "status": "pending"},
    ]
    [event] = rows(db, "SELECT from_status, to_status, actor_user_id FROM session_request_events")
    assert event == {"from_status": "pending", "to_status": "expired", "actor_user_id": None}
    card = scalar(
        db, "SELECT media_metadata->>'status' FROM chat_messages WHERE id = %s", first["message_id"]
    )
    assert card == "expired"


# ---------------------------------------------------------------------------- idempotency keys


def test_idempotent_retry_replays_the_first_answer(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    headers = student.headers | {"Idempotency-Key": "retry-1"}
    first = client.post(URL, json=request_body(tutor), headers=headers)
    again = client.post(URL, json=request_body(tutor), headers=headers)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert counts(db)["requested_sessions"] == 1
    assert counts(db)["chat_messages"] == 1


def test_idempotent_retry_replays_a_first_409_even_after_the_state_changed(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    existing = client.post(URL, json=request_body(tutor), headers=student.headers).json()
    headers = student.headers | {"Idempotency-Key": "k-409"}
    first = client.post(URL, json=request_body(tutor), headers=headers)
    assert first.status_code == 409

    client.post(f"{URL}/{existing['request_id']}/cancel", headers=student.headers)
    replay = client.post(URL, json=request_body(tutor), headers=headers)
    fresh = client.post(URL, json=request_body(tutor), headers=student.headers | {"Idempotency-Key": "k-new"})

    assert (replay.status_code, replay.json()) == (409, first.json())
    assert fresh.status_code == 200


def test_idempotent_retry_replays_a_first_404(client, factory):
    student, tutor = factory.student(), factory.tutor()
    headers = student.headers | {"Idempotency-Key": "k-404"}
    body = request_body(tutor, package_id=999_999)
    first = client.post(URL, json=body, headers=headers)
    again = client.post(URL, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (404, 404)
    assert again.json() == first.json() == {"detail": "Package not found", "code": "package_not_found"}


def test_same_key_with_another_body_is_422(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    headers = student.headers | {"Idempotency-Key": "k-1"}
    assert client.post(URL, json=request_body(tutor), headers=headers).status_code == 200
    other = client.post(URL, json=request_body(tutor, package=1), headers=headers)
    assert other.status_code == 422
    assert "different request body" in other.json()["detail"]
    assert counts(db)["requested_sessions"] == 1


def test_idempotency_keys_belong_to_one_user(client, factory):
    a, b, tutor = factory.student(), factory.student(), factory.tutor()
    first = client.post(URL, json=request_body(tutor), headers=a.headers | {"Idempotency-Key": "shared"})
    second = client.post(URL, json=request_body(tutor), headers=b.headers | {"Idempotency-Key": "shared"})
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["request_id"] != second.json()["request_id"]


def test_a_key_older_than_a_day_is_fresh_again(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    headers = student.headers | {"Idempotency-Key": "old"}
    first = client.post(URL, json=request_body(tutor), headers=headers).json()
    with db.transaction() as cur:
        cur.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    again = client.post(URL, json=request_body(tutor), headers=headers)
    assert again.status_code == 409  # acted on anew: the first request is still pending
    assert again.json()["existing_request_id"] == first["request_id"]


def test_an_overlong_idempotency_key_is_422(client, factory):
    student, tutor = factory.student(), factory.tutor()
    headers = student.headers | {"Idempotency-Key": "k" * 256}
    assert client.post(URL, json=request_body(tutor), headers=headers).status_code == 422


# ---------------------------------------------------------------------------- rate limit


@pytest.fixture
def limited_client(db_url):
    with app_client(db_url, request_rate_per_minute=2) as test_client:
        yield test_client


def test_rate_limit_answers_429_with_retry_after(client, limited_client, factory, db):
    student, tutor = factory.student(), factory.tutor(packages=3)
    answers = [
        limited_client.post(URL, json=request_body(tutor, package=i), headers=student.headers)
        for i in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2].headers["retry-after"]) <= 60
    assert counts(db)["requested_sessions"] == 2
    # Another user has a budget of their own.
    other = factory.student()
    assert (
        limited_client.post(URL, json=request_body(tutor, package=2), headers=other.headers).status_code
        == 200
    )
    # A 429 is not stored under an Idempotency-Key: the retry is throttled again, not replayed.
    keyed = student.headers | {"Idempotency-Key": "throttled"}
    assert limited_client.post(URL, json=request_body(tutor, package=2), headers=keyed).status_code == 429
    assert scalar(db, "SELECT count(*) FROM idempotency_keys") == 0


def test_before_the_schema_is_ready_a_create_is_503_and_writes_nothing(client, factory, db):
    # The Db dependency answers 503 until the schema is ready.
    student, tutor = factory.student(), factory.tutor()
    client.app.state.schema_ready = False
    try:
        response = client.post(URL, json=request_body(tutor), headers=student.headers)
        listed = client.get(f"{URL}/my-requests", headers=student.headers)
    finally:
        client.app.state.schema_ready = True
    assert response.status_code == 503 and listed.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"detail": "Starting up, try again", "code": "service_unavailable"}
    assert counts(db)["requested_sessions"] == 0
    assert client.post(URL, json=request_body(tutor), headers=student.headers).status_code == 200
