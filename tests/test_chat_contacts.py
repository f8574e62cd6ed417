"""Who may start a conversation with whom: tutors are public, family and request partners reach
each other, and anyone else, a child above all, is answered exactly like a missing user."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.chat import snapshot
from tests.support.factories import TestUser
from tests.support.requests import URL, request_body

CONVERSATIONS = "/api/chat/conversations"


def start(client: TestClient, user: TestUser, other_id: int):
    return client.post(CONVERSATIONS, json={"participant_user_ids": [other_id]}, headers=user.headers)


def missing_user_answer(client: TestClient, user: TestUser):
    answer = start(client, user, 2**31 - 1)
    assert answer.status_code == 404
    return answer


def assert_like_a_missing_user(client: TestClient, user: TestUser, other_id: int) -> None:
    missing = missing_user_answer(client, user)
    answer = start(client, user, other_id)
    assert (answer.status_code, answer.content) == (missing.status_code, missing.content)
    assert answer.headers.get("content-type") == missing.headers.get("content-type")


def test_a_stranger_learns_nothing_and_writes_nothing(client, db, factory):
    stranger, student, parent = factory.student(), factory.student(), factory.parent(children=1)
    child = parent.extra["children"][0]
    other_parent = factory.parent(children=1)
    deactivated = factory.tutor(packages=0)
    with db.transaction() as cur:
        cur.execute("UPDATE users SET is_active = false WHERE id = %s", (deactivated.id,))
    before = snapshot(db)
    for caller, other in [
        (stranger, child),  # a stranger's child above all
        (stranger, student),
        (stranger, parent),
        (other_parent, child),  # another parent's child
        (child, other_parent),
        (stranger, deactivated),
    ]:
        assert_like_a_missing_user(client, caller, other.id)
    assert snapshot(db) == before


def test_tutors_are_public_but_do_not_reach_strangers(client, db, factory):
    student, tutor = factory.student(), factory.tutor(packages=0)
    assert_like_a_missing_user(client, tutor, student.id)
    created = start(client, student, tutor.id)
    assert created.status_code == 201
    assert created.json()["other_user"] == {"id": tutor.id, "name": tutor.full_name}
    # Now that they talk, either side gets the conversation.
    assert start(client, tutor, student.id).json()["id"] == created.json()["id"]
    # A user whose tutor role was revoked is a tutor no more, profile row or not.
    former = factory.tutor(packages=0)
    with db.transaction() as cur:
        cur.execute(
            "UPDATE users SET roles = '{student}', active_role = 'student' WHERE id = %s", (former.id,)
        )
    assert_like_a_missing_user(client, student, former.id)


def test_parent_and_child_reach_each_other(client, factory):
    parent = factory.parent(children=2)
    first, second = parent.extra["children"]
    assert start(client, parent, first.id).status_code == 201
    assert start(client, second, parent.id).status_code == 201
    # Siblings are not linked by their parent.
    assert_like_a_missing_user(client, first, second.id)


def test_a_shared_session_request_links_requester_learner_and_tutor(client, factory):
    tutor, parent = factory.tutor(packages=1), factory.parent(children=2)
    learner, sibling = parent.extra["children"]
    assert_like_a_missing_user(client, tutor, learner.id)
    factory.as_role(parent, "parent")
    body = request_body(tutor, requested_to_id=learner.role_ids["student"])
    assert client.post(URL, json=body, headers=parent.headers).status_code == 200
    # The request opened the parent's chat with the tutor; the tutor may now reach the learner
    # too, but not the learner's sibling.
    assert start(client, tutor, parent.id).status_code == 200
    assert start(client, tutor, learner.id).status_code == 201
    assert_like_a_missing_user(client, tutor, sibling.id)


def test_blocked_user_cannot_start_a_conversation(client, db, factory):
    tutor, student = factory.tutor(packages=0), factory.student()
    assert (
        client.post("/api/chat/blocks", json={"user_id": student.id}, headers=tutor.headers).status_code
        == 201
    )
    before = snapshot(db)
    assert_like_a_missing_user(client, student, tutor.id)
    assert snapshot(db) == before
    assert client.delete(f"/api/chat/blocks/{student.id}", headers=tutor.headers).status_code == 204
    assert start(client, student, tutor.id).status_code == 201
