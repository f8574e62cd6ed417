"""Races against a real server (`python app.py`, two worker processes): simultaneous identical
submissions, first requests for several packages, racing answers, concurrent idempotent retries.
Each test releases all its requests at once from a barrier; the outcome must hold whatever the
interleaving."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import LiveServer
from tests.support.remote import race
from tests.support.requests import URL, counts, request_body, rows, scalar

pytestmark = pytest.mark.slow  # real server processes


@pytest.fixture
def server(db_url: str, client) -> Iterator[LiveServer]:
    # `client` first: it applies the schema before two workers start on the database.
    live = LiveServer(db_url, WORKERS="2")
    yield live
    live.stop()


def test_30_identical_submissions_make_one_request(server, factory, db):
    student, tutor = factory.student(), factory.tutor()
    body = request_body(tutor)

    answers = race([lambda http: http.post(f"{server.url}{URL}", json=body, headers=student.headers)] * 30)

    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: 1, 409: 29}, [a.text for a in answers if a.status_code not in (200, 409)]
    [created] = [a.json() for a in answers if a.status_code == 200]
    assert {a.json()["existing_request_id"] for a in answers if a.status_code == 409} == {
        created["request_id"]
    }
    assert all(
        f"(Request ID: {created['request_id']}, sent on " in a.json()["detail"]
        for a in answers
        if a.status_code == 409
    )
    assert counts(db) == {
        "requested_sessions": 1,
        "conversations": 1,
        "conversation_participants": 2,
        "chat_messages": 1,
    }


def test_first_requests_for_several_packages_open_one_conversation(server, factory, db):
    student, tutor = factory.student(), factory.tutor(packages=6)
    calls = [
        (
            lambda http, i=i: http.post(
                f"{server.url}{URL}", json=request_body(tutor, i), headers=student.headers
            )
        )
        for i in range(6)
    ]

    answers = race(calls * 2)  # each package twice: one 200 and one 409 apiece

    assert Counter(a.status_code for a in answers) == {200: 6, 409: 6}
    assert len({a.json()["conversation_id"] for a in answers if a.status_code == 200}) == 1
    assert counts(db) == {
        "requested_sessions": 6,
        "conversations": 1,
        "conversation_participants": 2,
        "chat_messages": 6,
    }
    assert scalar(db, "SELECT count(DISTINCT conversation_id) FROM chat_messages") == 1


def test_two_users_racing_into_one_conversation(server, factory, db):
    """A student requesting while the tutor's side opens the chat: still one conversation."""
    # The student is also a tutor, so that the tutor may open the chat before any request
    # links the two.
    student, tutor = factory.user(["student", "tutor"]), factory.tutor(packages=3)
    calls = [
        (
            lambda http, i=i: http.post(
                f"{server.url}{URL}", json=request_body(tutor, i), headers=student.headers
            )
        )
        for i in range(3)
    ] + [
        lambda http: http.post(
            f"{server.url}/api/chat/conversations",
            json={"type": "direct", "participant_user_ids": [student.id]},
            headers=tutor.headers,
        )
    ] * 3

    answers = race(calls)

    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    assert counts(db)["conversations"] == 1


def test_racing_accept_and_reject_have_one_winner(server, factory, db):
    student, tutor = factory.student(), factory.tutor()
    made = httpx.post(f"{server.url}{URL}", json=request_body(tutor), headers=student.headers).json()
    url = f"{server.url}{URL}/tutor/{made['request_id']}"
    calls = [
        (lambda http, s=s: http.patch(url, json={"status": s}, headers=tutor.headers))
        for s in ("accepted", "rejected") * 5
    ] + [
        lambda http: http.post(f"{server.url}{URL}/{made['request_id']}/cancel", headers=student.headers)
    ] * 2

    answers = race(calls)

    assert Counter(a.status_code for a in answers) == {200: 1, 409: 11}
    [winner] = [a.json() for a in answers if a.status_code == 200]
    final = scalar(db, "SELECT status FROM requested_sessions")
    assert winner["status"] == final
    assert all(a.json()["status"] == final for a in answers if a.status_code == 409)
    assert rows(db, "SELECT to_status FROM session_request_events") == [{"to_status": final}]
    assert scalar(db, "SELECT count(*) FROM chat_messages WHERE message_type = 'system'") == 1
    assert scalar(db, "SELECT count(*) FROM enrolled_students") == (1 if final == "accepted" else 0)


def test_concurrent_retries_with_one_idempotency_key_get_one_answer(server, factory, db):
    student, tutor = factory.student(), factory.tutor()
    headers = student.headers | {"Idempotency-Key": "double-click"}
    body = request_body(tutor)

    answers = race([lambda http: http.post(f"{server.url}{URL}", json=body, headers=headers)] * 10)

    assert Counter(a.status_code for a in answers) == {200: 10}
    assert all(a.json() == answers[0].json() for a in answers)
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 9
    assert counts(db)["requested_sessions"] == 1
    assert counts(db)["chat_messages"] == 1
