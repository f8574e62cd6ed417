"""The rules of a request beyond its shape: the price it was sent at, one pending request per
learner and package, roles as users.roles holds them, blocks, and idempotent replays of a user
who was deactivated since."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest

from tests import pg
from tests.support.live import LiveServer
from tests.support.remote import race
from tests.support.requests import URL, counts, request_body, rows, scalar

OTHERS_SENTENCE = re.compile(
    r"^Request already sent\. A pending request for this package already exists for this student "
    r"\(Request ID: (\d+), sent on [A-Z][a-z]+ \d{1,2}, \d{4}\)\. Please wait for the tutor's response\.$"
)
OWN_SENTENCE = re.compile(
    r"^Request already sent\. You have a pending request for this package \(Request ID: (\d+), "
    r"sent on [A-Z][a-z]+ \d{1,2}, \d{4}\)\. Please wait for the tutor's response\.$"
)


def _accept(client, tutor, request_id):
    return client.patch(f"{URL}/tutor/{request_id}", json={"status": "accepted"}, headers=tutor.headers)


# ---------------------------------------------------------------------------- the price


def test_a_later_price_rise_does_not_change_what_a_request_costs(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    package = tutor.extra["packages"][0]
    made = client.post(
        URL, json=request_body(tutor, counter_offer_price=None), headers=student.headers
    ).json()
    raised = client.put(
        f"/api/tutor/packages/{package['id']}", json={"hourly_rate": 99999}, headers=tutor.headers
    )
    assert raised.status_code == 200, raised.text

    mine = client.get(f"{URL}/my-requests", headers=student.headers).json()
    incoming = client.get(f"{URL}/tutor", headers=tutor.headers).json()
    detail = client.get(f"{URL}/tutor/{made['request_id']}", headers=tutor.headers).json()
    assert [r["package_price"] for r in mine] == [250.0]
    assert [r["package_price"] for r in incoming] == [250.0]
    assert detail["package_price"] == 250.0

    accepted = _accept(client, tutor, made["request_id"])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["agreed_price"] == 250.0
    assert scalar(db, "SELECT agreed_price FROM enrolled_students") == pytest.approx(250)


def test_a_second_acceptance_keeps_the_first_enrolment(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    first = client.post(
        URL, json=request_body(tutor, counter_offer_price=180), headers=student.headers
    ).json()
    assert _accept(client, tutor, first["request_id"]).json()["agreed_price"] == 180.0
    second = client.post(URL, json=request_body(tutor, counter_offer_price=120), headers=student.headers)
    assert second.status_code == 200, second.text

    answer = _accept(client, tutor, second.json()["request_id"])

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["already_enrolled"], body["agreed_price"]) == ("accepted", True, 180.0)
    assert "already enrolled" in body["message"]
    enrolments = rows(db, "SELECT session_request_id, agreed_price FROM enrolled_students")
    assert enrolments == [{"session_request_id": first["request_id"], "agreed_price": pytest.approx(180)}]
    assert "already_enrolled" not in _accept_fresh(client, factory, tutor)


def _accept_fresh(client, factory, tutor) -> dict:
    """A first acceptance for another student: no already_enrolled."""
    other = factory.student()
    made = client.post(URL, json=request_body(tutor), headers=other.headers).json()
    return _accept(client, tutor, made["request_id"]).json()


# ---------------------------------------------------------------------------- one pending per learner


def test_a_parent_and_their_child_cannot_both_hold_a_pending_request(client, factory, db):
    parent, tutor = factory.parent(children=1), factory.tutor(packages=2)
    child = parent.extra["children"][0]
    child_id = child.role_ids["student"]
    by_parent = client.post(URL, json=request_body(tutor, requested_to_id=child_id), headers=parent.headers)
    assert by_parent.status_code == 200
    before = counts(db)

    by_child = client.post(URL, json=request_body(tutor), headers=child.headers)
    again_by_parent = client.post(
        URL, json=request_body(tutor, requested_to_id=child_id), headers=parent.headers
    )

    assert by_child.status_code == 409
    assert by_child.json()["existing_request_id"] == by_parent.json()["request_id"]
    match = OTHERS_SENTENCE.match(by_child.json()["detail"])
    assert match and int(match.group(1)) == by_parent.json()["request_id"], by_child.json()["detail"]
    assert OWN_SENTENCE.match(again_by_parent.json()["detail"])
    assert counts(db)["requested_sessions"] == before["requested_sessions"]
    assert counts(db)["chat_messages"] == before["chat_messages"]
    # The child's own request first, then the parent's: the same rule the other way round.
    own = client.post(URL, json=request_body(tutor, 1), headers=child.headers)
    for_child = client.post(
        URL, json=request_body(tutor, 1, requested_to_id=child_id), headers=parent.headers
    )
    assert own.status_code == 200
    assert for_child.status_code == 409 and OTHERS_SENTENCE.match(for_child.json()["detail"])
    assert for_child.json()["existing_request_id"] == own.json()["request_id"]


@pytest.fixture
def server(db_url: str, client):
    live = LiveServer(db_url, WORKERS="2")
    yield live
    live.stop()


@pytest.mark.slow
def test_a_parent_and_child_submitting_at_once_make_one_request(server, factory, db):
    parent, tutor = factory.parent(children=1), factory.tutor()
    child = parent.extra["children"][0]
    for_child = request_body(tutor, requested_to_id=child.role_ids["student"])
    calls = [
        lambda http: http.post(f"{server.url}{URL}", json=for_child, headers=parent.headers),
        lambda http: http.post(f"{server.url}{URL}", json=request_body(tutor), headers=child.headers),
    ] * 8

    answers = race(calls)

    assert Counter(a.status_code for a in answers) == {200: 1, 409: 15}, [a.text for a in answers]
    [created] = [a.json() for a in answers if a.status_code == 200]
    assert {a.json()["existing_request_id"] for a in answers if a.status_code == 409} == {
        created["request_id"]
    }
    assert counts(db)["requested_sessions"] == 1
    assert scalar(db, "SELECT count(*) FROM chat_messages WHERE message_type = 'session_request'") == 1


def test_an_existing_database_with_two_pending_requests_for_one_learner_upgrades(client, factory, db, db_url):
    """A database from before package_price and the learner key: the price comes back from the
    card, the later of two pending requests for one learner and package is cancelled (kept,
    with its history), and the new key holds."""
    parent, tutor = factory.parent(children=1), factory.tutor()
    child = parent.extra["children"][0]
    first = client.post(URL, json=request_body(tutor), headers=child.headers).json()
    with db.transaction() as cur:
        cur.execute("UPDATE tutor_packages SET hourly_rate = 999")
        cur.execute("DROP INDEX requested_sessions_one_pending_learner_key")
        cur.execute(
            """INSERT INTO requested_sessions (tutor_id, package_id, requester_id, requester_type,
                   requested_to_id, schedule_type, days, timezone, package_price, expires_at)
               SELECT tutor_id, package_id, %s, 'parent', requested_to_id, schedule_type, days,
                      timezone, package_price, expires_at
                 FROM requested_sessions RETURNING id""",
            (parent.id,),
        )
        second = cur.fetchone()["id"]
        cur.execute("ALTER TABLE requested_sessions DROP COLUMN package_price CASCADE")
        # A database of the unversioned schema: its checksum table, no schema_migrations.
        cur.execute("DROP TABLE schema_migrations, schema_repeatables")
        cur.execute("CREATE TABLE schema_state (checksum text)")

    assert pg.apply_schema_at(db_url) is True

    saved = rows(db, "SELECT id, status, package_price FROM requested_sessions ORDER BY id")
    assert saved == [
        {"id": first["request_id"], "status": "pending", "package_price": pytest.approx(250)},
        {"id": second, "status": "cancelled", "package_price": pytest.approx(999)},
    ]
    [event] = rows(db, "SELECT request_id, to_status, reason FROM session_request_events")
    assert (event["request_id"], event["to_status"]) == (second, "cancelled")
    assert "sent first" in event["reason"]
    again = client.post(URL, json=request_body(tutor), headers=child.headers)
    assert again.json()["existing_request_id"] == first["request_id"]


# ---------------------------------------------------------------------------- roles


def _login(client, user) -> dict:
    response = client.post("/api/login", json={"email": user.email, "password": user.password})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_revoked_tutor_role_grants_nothing(client, factory, db):
    tutor = factory.user(["tutor", "student"])
    tutor.extra["packages"] = [factory.package(tutor)]
    student = factory.student()
    made = client.post(URL, json=request_body(tutor), headers=student.headers).json()
    with db.transaction() as cur:
        cur.execute(
            "UPDATE users SET roles = '{student}', active_role = 'student' WHERE id = %s", (tutor.id,)
        )

    login = _login(client, tutor)
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    refreshed = client.post("/api/refresh", json={"refresh_token": login["refresh_token"]})
    me = client.get("/api/me", headers=headers)

    assert set(login["user"]["role_ids"]) == {"student"}
    assert set(me.json()["role_ids"]) == {"student"}
    assert refreshed.status_code == 200, refreshed.text
    assert set(refreshed.json()["user"]["role_ids"]) == {"student"}
    assert client.get(f"{URL}/tutor", headers=headers).status_code == 403
    assert client.get(f"{URL}/tutor/{made['request_id']}", headers=headers).status_code == 403
    package = {"name": "New", "hourly_rate": 100}
    assert client.post("/api/tutor/packages", json=package, headers=headers).status_code == 403
    accept = client.patch(f"{URL}/tutor/{made['request_id']}", json={"status": "accepted"}, headers=headers)
    assert accept.status_code == 403
    assert scalar(db, "SELECT status FROM requested_sessions") == "pending"
    # And nobody can book them any more.
    other = factory.student()
    booked = client.post(URL, json=request_body(tutor), headers=other.headers)
    assert (booked.status_code, booked.json()["detail"]) == (404, "Tutor not found")


def test_a_revoked_parent_role_cannot_book_for_the_child(client, factory, db):
    person, tutor = factory.user(["parent", "student"]), factory.tutor()
    child = factory.child(person)
    factory.as_role(person, "parent")
    with db.transaction() as cur:
        cur.execute(
            "UPDATE users SET roles = '{student}', active_role = 'student' WHERE id = %s", (person.id,)
        )
    login = _login(client, person)
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    assert client.get("/api/parent/children", headers=headers).status_code == 403
    body = request_body(tutor, requested_to_id=child.role_ids["student"])
    booked = client.post(URL, json=body, headers=headers)
    assert booked.status_code == 200  # as the student they still are: for themselves
    assert scalar(db, "SELECT requested_to_id FROM requested_sessions") == person.role_ids["student"]


# ---------------------------------------------------------------------------- blocks and replays


def test_a_blocked_requester_gets_403_and_nothing_is_written(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    with db.transaction() as cur:
        cur.execute(
            "INSERT INTO user_blocks (blocker_user_id, blocked_user_id) VALUES (%s, %s)",
            (tutor.id, student.id),
        )
    before = counts(db)
    response = client.post(URL, json=request_body(tutor), headers=student.headers)
    assert (response.status_code, response.json()["detail"]) == (
        403,
        "This tutor is not accepting requests from you",
    )
    assert counts(db) == before
    assert counts(db)["conversations"] == 0
    # The block is the tutor's: another student still gets through.
    assert client.post(URL, json=request_body(tutor), headers=factory.student().headers).status_code == 200


def test_a_deactivated_user_gets_no_idempotent_replay(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    headers = student.headers | {"Idempotency-Key": "k-1"}
    assert client.post(URL, json=request_body(tutor), headers=headers).status_code == 200
    with db.transaction() as cur:
        cur.execute("UPDATE users SET is_active = false WHERE id = %s", (student.id,))
    replay = client.post(URL, json=request_body(tutor), headers=headers)
    assert replay.status_code == 401
    assert "success" not in replay.text


def test_a_deleted_user_with_an_idempotency_key_is_401(client, factory, db):
    student, tutor = factory.student(), factory.tutor()
    with db.transaction() as cur:
        cur.execute("DELETE FROM users WHERE id = %s", (student.id,))
    response = client.post(URL, json=request_body(tutor), headers=student.headers | {"Idempotency-Key": "k"})
    assert response.status_code == 401


def test_the_other_requesters_sentence_word_for_word(client):
    from astegni.session_requests.messages import DUPLICATE_OTHER
    from astegni.session_requests.service import duplicate_detail

    created = dt.datetime(2026, 1, 31, 10, 30, tzinfo=dt.UTC)
    assert duplicate_detail(123, created, "Africa/Addis_Ababa", DUPLICATE_OTHER) == (
        "Request already sent. A pending request for this package already exists for this student "
        "(Request ID: 123, sent on January 31, 2026). Please wait for the tutor's response."
    )
