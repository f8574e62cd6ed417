"""The lifecycle: lists, tutor detail, accept/reject, cancel, expiry, my-students, and what each
transition leaves in the conversation and on the event channel."""

from __future__ import annotations

import json
import select
from typing import Any

import psycopg2
import pytest

from astegni.chat.format import message_event
from astegni.core import housekeeping as expiry
from astegni.core.events import CHANNEL
from tests.support.requests import URL, backdate, request_body, rows, scalar


def create(client, user, tutor, package: int = 0, **overrides: Any) -> dict[str, Any]:
    response = client.post(URL, json=request_body(tutor, package, **overrides), headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


def respond(client, tutor, request_id: int, status: str, **extra: Any):
    return client.patch(f"{URL}/tutor/{request_id}", json={"status": status} | extra, headers=tutor.headers)


# ---------------------------------------------------------------------------- lists


def test_my_requests_newest_first_with_names(client, factory):
    student, tutor = factory.student(), factory.tutor(packages=2)
    first = create(client, student, tutor, 0)
    second = create(client, student, tutor, 1)
    response = client.get(f"{URL}/my-requests", headers=student.headers)
    assert response.status_code == 200
    listed = response.json()
    assert [r["id"] for r in listed] == [second["request_id"], first["request_id"]]
    top = listed[0]
    assert top["requester_name"] == student.full_name
    assert top["requested_to_name"] == student.full_name
    assert top["tutor_name"] == tutor.full_name
    assert top["package_name"] == "Package 2"
    assert (top["status"], top["hourly_rate"], top["counter_offer_price"]) == ("pending", 250.0, 150.0)
    assert (top["start_time"], top["end_time"]) == ("14:00", "16:00")
    assert "link" not in response.headers


def test_lists_only_show_the_callers_requests(client, factory):
    a, b, tutor, other_tutor = factory.student(), factory.student(), factory.tutor(), factory.tutor()
    create(client, a, tutor)
    mine = create(client, b, other_tutor)
    assert [r["id"] for r in client.get(f"{URL}/my-requests", headers=b.headers).json()] == [
        mine["request_id"]
    ]
    incoming = client.get(f"{URL}/tutor", headers=other_tutor.headers).json()
    assert [r["id"] for r in incoming] == [mine["request_id"]]


def test_pages_follow_the_link_header(client, factory):
    student, tutor = factory.student(), factory.tutor(packages=5)
    made = [create(client, student, tutor, i)["request_id"] for i in range(5)]
    seen, url, pages = [], f"{URL}/my-requests?limit=2", 0
    while url:
        response = client.get(url, headers=student.headers)
        assert response.status_code == 200
        seen += [r["id"] for r in response.json()]
        pages += 1
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
        if link:
            assert link.endswith('; rel="next"')
    assert pages == 3
    assert seen == sorted(made, reverse=True)


def test_status_filter_and_effective_expiry(client, factory, db):
    student, tutor = factory.student(), factory.tutor(packages=3)
    stale = create(client, student, tutor, 0)["request_id"]
    accepted = create(client, student, tutor, 1)["request_id"]
    pending = create(client, student, tutor, 2)["request_id"]
    backdate(db, stale)  # no sweep yet: the row still says 'pending'
    respond(client, tutor, accepted, "accepted")

    def ids(status: str) -> list[int]:
        response = client.get(f"{URL}/my-requests?status={status}", headers=student.headers)
        assert response.status_code == 200
        return [r["id"] for r in response.json()]

    assert ids("pending") == [pending]
    assert ids("expired") == [stale]
    assert ids("accepted") == [accepted]
    assert ids("rejected") == []
    tutor_view = client.get(f"{URL}/tutor?status=expired", headers=tutor.headers).json()
    assert [(r["id"], r["status"]) for r in tutor_view] == [(stale, "expired")]


@pytest.mark.parametrize(
    "query", ["status=done", "limit=0", "limit=101", "before=0", "before=abc", "status=%00"]
)
def test_list_parameters_are_validated(client, factory, query):
    student = factory.student()
    assert client.get(f"{URL}/my-requests?{query}", headers=student.headers).status_code == 422


def test_limit_caps_the_page(client, factory):
    student, tutor = factory.student(), factory.tutor(packages=3)
    for i in range(3):
        create(client, student, tutor, i)
    response = client.get(f"{URL}/my-requests?limit=1", headers=student.headers)
    assert len(response.json()) == 1
    assert "before=" in response.headers["link"]


def test_lists_need_a_token(client):
    for path in ("my-requests", "tutor", "tutor/my-students", "tutor/1"):
        assert client.get(f"{URL}/{path}").status_code == 401


def test_tutor_endpoints_refuse_non_tutors(client, factory):
    student = factory.student()
    for path in ("tutor", "tutor/my-students", "tutor/1"):
        assert client.get(f"{URL}/{path}", headers=student.headers).status_code == 403
    assert respond(client, student, 1, "accepted").status_code == 403


def test_tutor_detail_is_404_for_another_tutors_request(client, factory):
    student, tutor, other = factory.student(), factory.tutor(), factory.tutor()
    request_id = create(client, student, tutor)["request_id"]
    assert client.get(f"{URL}/tutor/{request_id}", headers=other.headers).status_code == 404
    assert client.get(f"{URL}/tutor/999999", headers=tutor.headers).status_code == 404
    detail = client.get(f"{URL}/tutor/{request_id}", headers=tutor.headers)
    assert detail.status_code == 200
    assert detail.json()["id"] == request_id
    assert detail.json()["history"] == []


# ---------------------------------------------------------------------------- accept / reject


def test_accept_enrols_at_the_counter_offer_and_tells_the_conversation(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    made = create(client, student, tutor, counter_offer_price=180.5)

    response = respond(client, tutor, made["request_id"], "accepted")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert (body["request_id"], body["status"], body["agreed_price"]) == (
        made["request_id"],
        "accepted",
        180.5,
    )
    assert body["responded_at"]
    [row] = rows(db, "SELECT status, responded_by_user_id, responded_at FROM requested_sessions")
    assert (row["status"], row["responded_by_user_id"]) == ("accepted", tutor.id)
    [enrolment] = rows(
        db, "SELECT tutor_id, student_id, package_id, session_request_id, agreed_price FROM enrolled_students"
    )
    assert enrolment == {
        "tutor_id": tutor.role_ids["tutor"],
        "student_id": student.role_ids["student"],
        "package_id": tutor.extra["packages"][0]["id"],
        "session_request_id": made["request_id"],
        "agreed_price": pytest.approx(180.5),
    }
    [event] = rows(db, "SELECT from_status, to_status, actor_user_id FROM session_request_events")
    assert event == {"from_status": "pending", "to_status": "accepted", "actor_user_id": tutor.id}
    card = scalar(db, "SELECT media_metadata FROM chat_messages WHERE id = %s", made["message_id"])
    assert card["status"] == "accepted" and card["responded_at"]
    [notice] = rows(
        db,
        "SELECT conversation_id, sender_user_id, content FROM chat_messages WHERE message_type = 'system'",
    )
    assert notice["conversation_id"] == made["conversation_id"]
    assert notice["sender_user_id"] == tutor.id
    assert "accepted" in notice["content"]

    students = client.get(f"{URL}/tutor/my-students", headers=tutor.headers)
    assert [(s["student_id"], s["student_name"], s["agreed_price"]) for s in students.json()] == [
        (student.role_ids["student"], student.full_name, 180.5)
    ]
    history = client.get(f"{URL}/tutor/{made['request_id']}", headers=tutor.headers).json()["history"]
    assert [(h["from_status"], h["to_status"], h["actor_name"]) for h in history] == [
        ("pending", "accepted", tutor.full_name)
    ]


def test_accept_without_counter_offer_agrees_the_package_rate(client, factory):
    student, tutor = factory.student(), factory.tutor()
    made = create(client, student, tutor, counter_offer_price=None)
    assert respond(client, tutor, made["request_id"], "accepted").json()["agreed_price"] == 250.0


def test_reject_records_the_reason(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    made = create(client, student, tutor)
    response = respond(client, tutor, made["request_id"], "rejected", rejected_reason="Fully booked")
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert "agreed_price" not in response.json()
    assert scalar(db, "SELECT rejected_reason FROM requested_sessions") == "Fully booked"
    assert scalar(db, "SELECT count(*) FROM enrolled_students") == 0
    notice = scalar(db, "SELECT content FROM chat_messages WHERE message_type = 'system'")
    assert "declined" in notice and "Fully booked" in notice
    assert scalar(db, "SELECT reason FROM session_request_events") == "Fully booked"


def test_answering_twice_is_409(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    made = create(client, student, tutor)
    assert respond(client, tutor, made["request_id"], "accepted").status_code == 200
    again = respond(client, tutor, made["request_id"], "rejected")
    assert again.status_code == 409
    assert again.json()["status"] == "accepted"
    assert scalar(db, "SELECT status FROM requested_sessions") == "accepted"
    assert scalar(db, "SELECT count(*) FROM session_request_events") == 1


def test_only_the_requests_tutor_may_answer(client, factory, db):
    student, tutor, other = factory.student(), factory.tutor(), factory.tutor()
    made = create(client, student, tutor)
    assert respond(client, other, made["request_id"], "accepted").status_code == 404
    assert respond(client, tutor, 999_999, "accepted").status_code == 404
    assert scalar(db, "SELECT status FROM requested_sessions") == "pending"


def test_an_expired_request_cannot_be_answered(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    made = create(client, student, tutor)
    backdate(db, made["request_id"])
    response = respond(client, tutor, made["request_id"], "accepted")
    assert (response.status_code, response.json()["status"]) == (409, "expired")
    assert scalar(db, "SELECT count(*) FROM enrolled_students") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"status": "pending"},
        {"status": "cancelled"},
        {},
        {"status": "accepted", "rejected_reason": "x" * 501},
    ],
)
def test_respond_body_is_validated(client, factory, body):
    student, tutor = factory.student(), factory.tutor()
    made = create(client, student, tutor)
    response = client.patch(f"{URL}/tutor/{made['request_id']}", json=body, headers=tutor.headers)
    assert response.status_code == 422


# ---------------------------------------------------------------------------- cancel


def test_cancel_by_the_requester(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    made = create(client, student, tutor)
    response = client.post(
        f"{URL}/{made['request_id']}/cancel", json={"reason": "Changed my mind"}, headers=student.headers
    )
    assert response.status_code == 200
    assert response.json() | {"status": "cancelled"} == response.json()
    assert scalar(db, "SELECT status FROM requested_sessions") == "cancelled"
    assert rows(db, "SELECT to_status, actor_user_id, reason FROM session_request_events") == [
        {"to_status": "cancelled", "actor_user_id": student.id, "reason": "Changed my mind"}
    ]
    again = client.post(f"{URL}/{made['request_id']}/cancel", headers=student.headers)
    assert (again.status_code, again.json()["status"]) == (409, "cancelled")
    assert respond(client, tutor, made["request_id"], "accepted").status_code == 409


def test_cancel_is_for_the_requester_only(client, factory, db):
    student, stranger, tutor = factory.student(), factory.student(), factory.tutor()
    made = create(client, student, tutor)
    assert client.post(f"{URL}/{made['request_id']}/cancel", headers=stranger.headers).status_code == 404
    assert client.post(f"{URL}/{made['request_id']}/cancel", headers=tutor.headers).status_code == 403
    assert client.post(f"{URL}/999999/cancel", headers=student.headers).status_code == 404
    assert client.post(f"{URL}/{made['request_id']}/cancel").status_code == 401
    assert scalar(db, "SELECT status FROM requested_sessions") == "pending"


def test_cancel_after_accept_is_409(client, factory):
    student, tutor = factory.student(), factory.tutor()
    made = create(client, student, tutor)
    respond(client, tutor, made["request_id"], "accepted")
    assert client.post(f"{URL}/{made['request_id']}/cancel", headers=student.headers).status_code == 409


# ---------------------------------------------------------------------------- a new request after the end


@pytest.mark.parametrize("ending", ["accepted", "rejected", "cancelled", "expired"])
def test_new_request_allowed_after_the_previous_one_ended(client, factory, db, ending):
    student, tutor = factory.student(), factory.tutor()
    made = create(client, student, tutor)
    if ending == "cancelled":
        assert client.post(f"{URL}/{made['request_id']}/cancel", headers=student.headers).status_code == 200
    elif ending == "expired":
        backdate(db, made["request_id"])
        assert expiry.sweep(db) == 1
    else:
        assert respond(client, tutor, made["request_id"], ending).status_code == 200

    again = client.post(URL, json=request_body(tutor), headers=student.headers)

    assert again.status_code == 200, again.text
    assert again.json()["conversation_id"] == made["conversation_id"]
    assert scalar(db, "SELECT status FROM requested_sessions WHERE id = %s", made["request_id"]) == ending


# ---------------------------------------------------------------------------- expiry sweep


def test_sweep_expires_due_requests_with_history_and_notice(client, factory, db):
    student, tutor = factory.student(), factory.tutor(packages=2)
    due = create(client, student, tutor, 0)
    fresh = create(client, student, tutor, 1)
    backdate(db, due["request_id"])

    assert expiry.sweep(db) == 1
    assert expiry.sweep(db) == 0

    statuses = dict((r["id"], r["status"]) for r in rows(db, "SELECT id, status FROM requested_sessions"))
    assert statuses == {due["request_id"]: "expired", fresh["request_id"]: "pending"}
    assert rows(db, "SELECT request_id, to_status, actor_user_id FROM session_request_events") == [
        {"request_id": due["request_id"], "to_status": "expired", "actor_user_id": None}
    ]
    assert (
        scalar(db, "SELECT media_metadata->>'status' FROM chat_messages WHERE id = %s", due["message_id"])
        == "expired"
    )
    assert "expired" in scalar(db, "SELECT content FROM chat_messages WHERE message_type = 'system'")


def test_sweep_purges_day_old_idempotency_keys(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    client.post(URL, json=request_body(tutor), headers=student.headers | {"Idempotency-Key": "a"})
    client.post(URL, json=request_body(tutor, package=1), headers=student.headers | {"Idempotency-Key": "b"})
    with db.transaction() as cur:
        cur.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'a'")
    expiry.sweep(db)
    assert [r["key"] for r in rows(db, "SELECT key FROM idempotency_keys")] == ["b"]


# ---------------------------------------------------------------------------- events


def _listen(db_url: str):
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    conn.cursor().execute(f"LISTEN {CHANNEL}")
    return conn


def _drain(conn) -> list[dict[str, Any]]:
    events = []
    while select.select([conn], [], [], 0.5) != ([], [], []):
        conn.poll()
        while conn.notifies:
            events.append(json.loads(conn.notifies.pop(0).payload))
        if events and not select.select([conn], [], [], 0.2)[0]:
            break
    return events


def _message_row(db, message_id: int) -> dict[str, Any]:
    [row] = rows(
        db,
        "SELECT m.*, u.first_name || ' ' || u.father_name AS sender_name FROM chat_messages m"
        " LEFT JOIN users u ON u.id = m.sender_user_id WHERE m.id = %s",
        message_id,
    )
    return row


def test_events_reach_both_users_in_the_chat_shape(client, factory, db, db_url):
    student, tutor = factory.student(), factory.tutor()
    listener = _listen(db_url)
    try:
        made = create(client, student, tutor)
        [created] = _drain(listener)
        card_before = _message_row(db, made["message_id"])
        respond(client, tutor, made["request_id"], "accepted")
        answered = _drain(listener)
    finally:
        listener.close()

    both = sorted([student.id, tutor.id])
    assert (created["type"], created["user_ids"]) == ("message.created", both)
    # The SQL-built event equals what astegni.chat.format would build from the stored row.
    assert _normalise(created["data"]) == _normalise(message_event(card_before))

    assert sorted(e["type"] for e in answered) == [
        "message.created",
        "message.updated",
        "session_request.updated",
    ]
    assert all(e["user_ids"] == both for e in answered)
    by_type = {e["type"]: e["data"] for e in answered}
    assert (
        by_type["session_request.updated"] | {"id": made["request_id"], "status": "accepted"}
        == by_type["session_request.updated"]
    )
    assert by_type["message.updated"]["message"]["media_metadata"]["status"] == "accepted"
    notice = by_type["message.created"]["message"]
    assert notice["message_type"] == "system"
    assert _normalise(by_type["message.created"]) == _normalise(message_event(_message_row(db, notice["id"])))
    assert _normalise(by_type["message.updated"]) == _normalise(
        message_event(_message_row(db, made["message_id"]))
    )


def _normalise(data: Any) -> Any:
    """Timestamps compared as instants (PostgreSQL trims trailing zeros of the microseconds)."""
    import datetime as dt

    if isinstance(data, dict):
        return {k: _normalise(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_normalise(v) for v in data]
    if isinstance(data, dt.datetime):
        return data
    if isinstance(data, str) and len(data) >= 20 and data[4] == "-" and data[10] == "T":
        return dt.datetime.fromisoformat(data)
    return data


# ---------------------------------------------------------------------------- the spec's queries


def test_the_specs_troubleshooting_queries_work_as_written(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    made = create(client, student, tutor)
    package_id = tutor.extra["packages"][0]["id"]
    pending = rows(
        db, "SELECT * FROM requested_sessions WHERE requester_id = %s AND status = 'pending';", student.id
    )
    assert [r["id"] for r in pending] == [made["request_id"]]
    conversations = rows(
        db,
        "SELECT c.* FROM conversations c JOIN conversation_participants cp ON c.id = cp.conversation_id"
        " WHERE cp.user_id = %s;",
        student.id,
    )
    assert [c["id"] for c in conversations] == [made["conversation_id"]]
    duplicate = rows(
        db,
        "SELECT id, created_at FROM requested_sessions WHERE tutor_id = %s AND requester_id = %s"
        " AND package_id = %s AND status = 'pending';",
        tutor.role_ids["tutor"],
        student.id,
        package_id,
    )
    assert [d["id"] for d in duplicate] == [made["request_id"]]
    everything = rows(
        db,
        "SELECT requester_id, tutor_id, package_id, status, created_at FROM requested_sessions"
        " WHERE status = 'pending';",
    )
    assert [(r["requester_id"], r["package_id"]) for r in everything] == [(student.id, package_id)]
