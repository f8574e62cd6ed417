"""Blocking: the list, what a block refuses (the blocked user's messages and edits, a new
conversation), which events it keeps from the blocker, and that history stays readable."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.support.chat import open_conversation, send, snapshot
from tests.support.factories import TestUser
from tests.support.live import LiveServer
from tests.support.polling import eventually
from tests.support.requests import URL, request_body
from tests.support.ws import connect_client, next_event

BLOCKS = "/api/chat/blocks"
BLOCKED = {"detail": "You cannot message this user", "code": "cannot_message"}


def block(client, blocker: TestUser, user_id: int):
    return client.post(BLOCKS, json={"user_id": user_id}, headers=blocker.headers)


def blocks(client, user: TestUser) -> list[dict]:
    response = client.get(BLOCKS, headers=user.headers)
    assert response.status_code == 200
    return response.json()["blocks"]


def test_block_list_and_unblock(client, db, factory):
    tutor, student, stranger = factory.tutor(packages=0), factory.student(), factory.student()
    first = block(client, tutor, student.id)  # anyone may reach a tutor: so may a tutor block them
    assert first.status_code == 201
    body = first.json()
    assert {k: body[k] for k in ("user_id", "name")} == {"user_id": student.id, "name": student.full_name}
    again = block(client, tutor, student.id)
    assert (again.status_code, again.json()) == (200, body)
    assert blocks(client, tutor) == [body]
    assert blocks(client, student) == []

    # Yourself, no such user, and a user the caller has no contact with (whose name a block list
    # would show): refused, and the last two alike.
    assert block(client, tutor, tutor.id).status_code == 400
    missing = block(client, student, 2**31 - 1)
    assert missing.status_code == 404
    unknown = block(client, student, stranger.id)
    assert (unknown.status_code, unknown.content) == (missing.status_code, missing.content)
    assert block(client, student, 0).status_code == 422
    assert blocks(client, student) == []

    for _ in range(2):  # idempotent
        assert client.delete(f"{BLOCKS}/{student.id}", headers=tutor.headers).status_code == 204
    assert client.delete(f"{BLOCKS}/{2**31 - 1}", headers=tutor.headers).status_code == 204
    assert blocks(client, tutor) == []
    # A student may block a tutor, and a parent their child.
    assert block(client, student, tutor.id).status_code == 201
    parent = factory.parent(children=1)
    assert block(client, parent, parent.extra["children"][0].id).status_code == 201


def test_blocked_user_cannot_send_or_edit_and_history_stays(client, db, factory):
    tutor, student = factory.tutor(packages=0), factory.student()
    cid = open_conversation(client, student, tutor)
    old = send(client, student, cid, "before the block")
    send(client, tutor, cid, "a reply")
    assert block(client, tutor, student.id).status_code == 201

    before = snapshot(db)
    for extra in ({}, {"client_message_id": "after-block"}, {"reply_to_id": old["id"]}):
        body = {"conversation_id": cid, "content": "let me in"} | extra
        refused = client.post("/api/chat/messages", json=body, headers=student.headers)
        assert (refused.status_code, refused.json()) == (403, BLOCKED)
    edit = client.put(
        f"/api/chat/messages/{old['id']}", json={"content": "new words"}, headers=student.headers
    )
    assert (edit.status_code, edit.json()) == (403, BLOCKED)
    assert snapshot(db) == before

    # Both still read the history; the blocker may still write.
    for user in (student, tutor):
        page = client.get(f"/api/chat/messages/{cid}", headers=user.headers)
        assert [m["content"] for m in page.json()["messages"]] == ["before the block", "a reply"]
    send(client, tutor, cid, "from the blocker")

    assert client.delete(f"{BLOCKS}/{student.id}", headers=tutor.headers).status_code == 204
    send(client, student, cid, "after the unblock")


def test_blocker_gets_no_event_the_blocked_user_causes(client, db, factory):
    tutor, blocked, other = factory.tutor(packages=1), factory.student(), factory.student()
    cid = open_conversation(client, blocked, tutor)
    old = send(client, blocked, cid, "old")
    other_cid = open_conversation(client, other, tutor)
    created = client.post(URL, json=request_body(tutor), headers=blocked.headers)
    assert created.status_code == 200, created.text
    last = send(client, tutor, cid, "latest")
    assert block(client, tutor, blocked.id).status_code == 201

    with connect_client(client, tutor) as tutor_ws, connect_client(client, blocked) as blocked_ws:
        next_event(tutor_ws, "ready")
        next_event(blocked_ws, "ready")
        # What the blocked user does: read, delete, cancel their request.
        read = client.post(
            f"/api/chat/conversations/{cid}/read",
            json={"last_read_message_id": last["id"]},
            headers=blocked.headers,
        )
        assert read.status_code == 200
        assert client.delete(f"/api/chat/messages/{old['id']}", headers=blocked.headers).status_code == 200
        cancel = client.post(f"{URL}/{created.json()['request_id']}/cancel", headers=blocked.headers)
        assert cancel.status_code == 200, cancel.text
        # The blocked user is told of their own acts; the tutor's next event is the other
        # student's message, so none of the above reached the tutor (one listener delivers in
        # commit order to every socket).
        assert next_event(blocked_ws)["type"] == "read.updated"
        message = send(client, other, other_cid, "from someone else")
        assert next_event(tutor_ws) == {
            "type": "message.created",
            "data": {"conversation_id": other_cid, "message": message},
        }
        # The blocker's own messages still reach the blocked user.
        mine = send(client, tutor, cid, "still here")
        assert next_event(tutor_ws)["data"]["message"]["id"] == mine["id"]
        types = [next_event(blocked_ws) for _ in range(5)]
        assert [event["type"] for event in types] == [
            "message.deleted",
            "message.updated",  # the request card
            "message.created",  # the cancel notice
            "session_request.updated",
            "message.created",
        ]
        assert types[-1]["data"]["message"]["id"] == mine["id"]


@pytest.mark.slow
def test_no_send_gets_through_once_the_block_is_committed(client, factory, db_url):
    """Sends racing a block: each is refused or sent in one statement, and every send that
    starts after the block's answer is refused."""
    tutor, student = factory.tutor(packages=0), factory.student()
    cid = open_conversation(client, student, tutor)
    results: list[tuple[float, int]] = []
    stop = threading.Event()
    server = LiveServer(db_url, CHAT_SEND_RATE_PER_MINUTE="0")

    def keep_sending() -> None:
        with httpx.Client(base_url=server.url, timeout=20) as http:
            while not stop.is_set():
                started = time.monotonic()
                body = {"conversation_id": cid, "content": "spam"}
                response = http.post("/api/chat/messages", json=body, headers=student.headers)
                results.append((started, response.status_code))

    threads = [threading.Thread(target=keep_sending) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        eventually(lambda: len(results) >= 8, 20, interval=0.01)
        with httpx.Client(base_url=server.url, timeout=20) as http:
            answer = http.post(BLOCKS, json={"user_id": student.id}, headers=tutor.headers)
        assert answer.status_code == 201
        blocked_at = time.monotonic()
        eventually(lambda: sum(started > blocked_at for started, _ in results) >= 8, 20, interval=0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        server.stop()
    assert {status for _, status in results} <= {201, 403}
    assert any(status == 201 for started, status in results if started < blocked_at)
    after = [status for started, status in results if started > blocked_at]
    assert len(after) >= 8 and set(after) == {403}
