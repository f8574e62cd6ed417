"""Per-user limits on chat writes: sends (those a block refuses not counted), conversation starts
(refused ones counted too) and blocks, each answered past its limit with 429 and Retry-After, and
each off at 0."""

from __future__ import annotations

import pytest

from tests.support.chat import open_conversation, send, snapshot
from tests.support.factories import Factory
from tests.support.live import app_client, make_settings

LIMITS = {"chat_send_rate_per_minute": 3, "conversation_create_rate_per_hour": 3, "block_rate_per_hour": 2}


@pytest.fixture
def settings(db_url):
    return make_settings(db_url, **LIMITS)


def assert_limited(response, window_seconds: int) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= window_seconds


def start(client, user, other_id: int):
    return client.post(
        "/api/chat/conversations", json={"participant_user_ids": [other_id]}, headers=user.headers
    )


def test_sends_are_limited_per_user(client, db, factory):
    student, tutor = factory.student(), factory.tutor(packages=0)
    cid = open_conversation(client, student, tutor)
    for i in range(3):
        send(client, student, cid, f"m{i}")
    before = snapshot(db)
    assert_limited(
        client.post(
            "/api/chat/messages",
            json={"conversation_id": cid, "content": "one more"},
            headers=student.headers,
        ),
        60,
    )
    assert snapshot(db) == before
    send(client, tutor, cid, "the other side is not held back")


def test_sends_refused_by_a_block_do_not_count(client, factory):
    """A send is counted in its own unit of work, so the 403 of a block rolls its hit back: more
    refused sends than the limit stay 403 (a hit counted apart would make the fourth a 429), and
    once unblocked the sender still has the whole limit."""
    student, tutor = factory.student(), factory.tutor(packages=0)
    cid = open_conversation(client, student, tutor)
    assert (
        client.post("/api/chat/blocks", json={"user_id": student.id}, headers=tutor.headers).status_code
        == 201
    )
    message = {"conversation_id": cid, "content": "let me in"}
    for _ in range(LIMITS["chat_send_rate_per_minute"] + 2):
        refused = client.post("/api/chat/messages", json=message, headers=student.headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "cannot_message")
    assert client.delete(f"/api/chat/blocks/{student.id}", headers=tutor.headers).status_code == 204
    for i in range(LIMITS["chat_send_rate_per_minute"]):
        send(client, student, cid, f"m{i}")
    assert_limited(client.post("/api/chat/messages", json=message, headers=student.headers), 60)


def test_conversation_starts_are_limited_refused_ones_included(client, factory):
    prober, tutor = factory.student(), factory.tutor(packages=0)
    for user_id in (2**31 - 1, 2**31 - 2, 2**31 - 3):  # probing ids: all refused, all counted
        assert start(client, prober, user_id).status_code == 404
    assert_limited(start(client, prober, tutor.id), 3600)
    assert start(client, factory.student(), tutor.id).status_code == 201


def test_blocks_are_limited_per_user(client, factory):
    tutor = factory.tutor(packages=0)
    students = [factory.student() for _ in range(2)]
    for student in students:
        response = client.post("/api/chat/blocks", json={"user_id": student.id}, headers=tutor.headers)
        assert response.status_code == 201
    assert_limited(client.delete(f"/api/chat/blocks/{students[0].id}", headers=tutor.headers), 3600)
    assert client.get("/api/chat/blocks", headers=tutor.headers).json()["blocks"] != []


def test_refused_blocks_count_too(client, factory):
    prober, tutor = factory.student(), factory.tutor(packages=0)
    for user_id in (2**31 - 1, 2**31 - 2):  # probing ids: refused, and counted
        assert (
            client.post("/api/chat/blocks", json={"user_id": user_id}, headers=prober.headers).status_code
            == 404
        )
    assert_limited(client.post("/api/chat/blocks", json={"user_id": tutor.id}, headers=prober.headers), 3600)


def test_zero_turns_the_limits_off(db_url, factory):
    with app_client(db_url, **dict.fromkeys(LIMITS, 0)) as client:
        unlimited = Factory(client, factory.db)
        student, tutor = unlimited.student(), unlimited.tutor(packages=0)
        cid = open_conversation(client, student, tutor)
        for i in range(5):
            send(client, student, cid, f"m{i}")
            assert start(client, student, 2**31 - 1 - i).status_code == 404
            assert client.delete(f"/api/chat/blocks/{student.id}", headers=tutor.headers).status_code == 204
