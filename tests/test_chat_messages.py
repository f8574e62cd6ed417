"""Messages: idempotent sends, validation, pages and catch-up, read markers, edit and delete."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.support.chat import open_conversation, send, snapshot


@pytest.fixture
def pair(client, factory):
    student, tutor = factory.student(), factory.tutor(packages=0)
    return student, tutor, open_conversation(client, student, tutor)


def count_messages(db, **where) -> int:
    clause = " AND ".join(f"{column} = %({column})s" for column in where) or "true"
    with db.transaction() as cur:
        cur.execute(f"SELECT count(*) AS n FROM chat_messages WHERE {clause}", where)
        return cur.fetchone()["n"]


# ---------------------------------------------------------------------------- sending


def test_send_returns_201_and_bumps_the_conversation(client, db, pair):
    student, _, cid = pair
    message = send(client, student, cid, "  Hello there  ")
    assert message["content"] == "Hello there"  # stripped
    assert message["sender_user_id"] == student.id
    assert message["sender_name"] == student.full_name
    assert message["message_type"] == "text"
    assert message["is_deleted"] is False and message["edited_at"] is None
    with db.transaction() as cur:
        cur.execute("SELECT last_message_at FROM conversations WHERE id = %s", (cid,))
        assert cur.fetchone()["last_message_at"].isoformat().replace("+00:00", "Z") == message["created_at"]


def test_repeated_client_message_id_returns_the_first_message(client, db, factory, pair):
    student, tutor, cid = pair
    first = send(client, student, cid, "once", client_message_id="abc-1")
    retry = send(client, student, cid, "once (retried, body differs)", client_message_id="abc-1")
    assert retry == first
    assert count_messages(db, client_message_id="abc-1") == 1
    # Unique per sender: the other participant may use the same client id.
    theirs = send(client, tutor, cid, "mine", client_message_id="abc-1")
    assert theirs["id"] != first["id"]
    # The same id in another conversation is a client bug, not a retry.
    elsewhere = open_conversation(client, student, factory.tutor(packages=0))
    before = snapshot(db)
    response = client.post(
        "/api/chat/messages",
        json={"conversation_id": elsewhere, "content": "x", "client_message_id": "abc-1"},
        headers=student.headers,
    )
    assert response.status_code == 409
    assert snapshot(db) == before


@pytest.mark.slow
def test_concurrent_sends_with_one_client_message_id_make_one_message(db_url, db, live_server):
    with httpx.Client(base_url=live_server.url, timeout=20) as http:
        users = []
        for i in range(2):
            response = http.post(
                "/api/register",
                json={
                    "email": f"race{i}@example.com",
                    "password": "correct-horse-battery",
                    "first_name": "Race",
                    "father_name": str(i),
                    "roles": ["student", "tutor"][: i + 1],  # the second may be reached: a tutor
                },
            )
            assert response.status_code == 201
            users.append(response.json())
        headers = {"Authorization": f"Bearer {users[0]['access_token']}"}
        cid = http.post(
            "/api/chat/conversations",
            json={"participant_user_ids": [users[1]["user"]["id"]]},
            headers=headers,
        ).json()["id"]

    barrier = threading.Barrier(12)
    results: list[httpx.Response] = []

    def attempt() -> None:
        with httpx.Client(base_url=live_server.url, timeout=20) as http:
            barrier.wait()
            body = {"conversation_id": cid, "content": "racing", "client_message_id": "race-1"}
            results.append(http.post("/api/chat/messages", json=body, headers=headers))

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [201] * 12
    assert len({r.json()["message"]["id"] for r in results}) == 1
    assert count_messages(db, client_message_id="race-1") == 1


def test_reply_must_be_in_the_same_conversation(client, db, factory, pair):
    student, tutor, cid = pair
    original = send(client, tutor, cid, "question?")
    reply = send(client, student, cid, "answer", reply_to_id=original["id"])
    assert reply["reply_to_id"] == original["id"]
    other_cid = open_conversation(client, student, factory.tutor(packages=0))
    foreign = send(client, student, other_cid, "elsewhere")
    before = snapshot(db)
    for reply_to in (foreign["id"], 999999):
        for extra in ({}, {"client_message_id": f"r-{reply_to}"}):
            response = client.post(
                "/api/chat/messages",
                json={"conversation_id": cid, "content": "bad reply", "reply_to_id": reply_to} | extra,
                headers=student.headers,
            )
            assert response.status_code == 422, response.text
    assert snapshot(db) == before


@pytest.mark.parametrize(
    "body",
    [
        {"content": ""},
        {"content": "   "},
        {"content": "x" * 4001},
        {"content": "hi", "message_type": "session_request"},
        {"content": "hi", "message_type": "system"},
        {"content": "hi", "client_message_id": ""},
        {"content": "hi", "client_message_id": "c" * 101},
        {"content": "hi", "reply_to_id": 0},
        {"content": "nul\x00byte"},
        {"content": 5},
    ],
)
def test_invalid_message_bodies_are_422(client, db, pair, body):
    student, _, cid = pair
    response = client.post(
        "/api/chat/messages", json={"conversation_id": cid} | body, headers=student.headers
    )
    assert response.status_code == 422, response.text
    assert count_messages(db) == 0


def test_content_limit_is_inclusive(client, pair):
    student, _, cid = pair
    assert send(client, student, cid, "y" * 4000)["content"] == "y" * 4000


# ---------------------------------------------------------------------------- paging


def test_pages_backwards_and_catches_up_forwards(client, pair):
    student, tutor, cid = pair
    ids = [send(client, student if i % 2 else tutor, cid, f"m{i}")["id"] for i in range(7)]

    def page(query: str) -> tuple[list[int], bool]:
        response = client.get(f"/api/chat/messages/{cid}?{query}", headers=student.headers)
        assert response.status_code == 200, response.text
        return [m["id"] for m in response.json()["messages"]], response.json()["has_more"]

    assert page("") == (ids, False)
    assert page("limit=3") == (ids[4:], True)
    assert page(f"limit=3&before_id={ids[4]}") == (ids[1:4], True)
    assert page(f"limit=3&before_id={ids[1]}") == (ids[:1], False)
    assert page(f"limit=3&before_id={ids[0]}") == ([], False)
    # Catch-up after a reconnect: everything after the last message the client saw.
    assert page("limit=3&after_id=0") == (ids[:3], True)
    assert page(f"limit=3&after_id={ids[2]}") == (ids[3:6], True)
    assert page(f"limit=3&after_id={ids[5]}") == (ids[6:], False)
    assert page(f"after_id={ids[6]}") == ([], False)
    assert page(f"after_id={ids[1]}&before_id={ids[4]}") == (ids[2:4], False)
    for bad in ("limit=0", "limit=101", "before_id=0", "after_id=-1", f"before_id={2**63}"):
        assert client.get(f"/api/chat/messages/{cid}?{bad}", headers=student.headers).status_code == 422


def test_empty_conversation_has_an_empty_page(client, pair):
    student, _, cid = pair
    response = client.get(f"/api/chat/messages/{cid}", headers=student.headers)
    assert response.json() == {"messages": [], "has_more": False}


# ---------------------------------------------------------------------------- read markers


def unread(client, user, cid) -> int:
    conversations = client.get("/api/chat/conversations", headers=user.headers).json()["conversations"]
    return next(c["unread_count"] for c in conversations if c["id"] == cid)


def test_read_marker_moves_forward_only_and_drives_unread_counts(client, db, factory, pair):
    student, tutor, cid = pair
    incoming = [send(client, tutor, cid, f"t{i}")["id"] for i in range(4)]
    send(client, student, cid, "my own, never unread")
    assert unread(client, student, cid) == 4

    def mark(message_id: int):
        return client.post(
            f"/api/chat/conversations/{cid}/read",
            json={"last_read_message_id": message_id},
            headers=student.headers,
        )

    moved = mark(incoming[2])
    assert moved.status_code == 200
    assert moved.json() == {
        "conversation_id": cid,
        "user_id": student.id,
        "last_read_message_id": incoming[2],
        "unread_count": 1,
    }
    assert unread(client, student, cid) == 1
    back = mark(incoming[0])  # older: the marker stays
    assert back.status_code == 200 and back.json()["last_read_message_id"] == incoming[2]
    assert unread(client, student, cid) == 1
    # A deleted message no longer counts as unread.
    client.delete(f"/api/chat/messages/{incoming[3]}", headers=tutor.headers)
    assert unread(client, student, cid) == 0

    status = client.get(f"/api/chat/conversations/{cid}/read-status", headers=tutor.headers)
    assert status.status_code == 200
    markers = {p["user_id"]: p["last_read_message_id"] for p in status.json()["participants"]}
    assert markers == {student.id: incoming[2], tutor.id: None}

    # A marker must be a message of this conversation; nothing moves otherwise.
    foreign = send(client, student, open_conversation(client, student, factory.tutor(packages=0)), "x")
    before = snapshot(db)
    assert mark(foreign["id"]).status_code == 422
    assert mark(999999).status_code == 422
    assert snapshot(db) == before
    bad = client.post(f"/api/chat/conversations/{cid}/read", json={}, headers=student.headers)
    assert bad.status_code == 422


# ---------------------------------------------------------------------------- edit and delete


def test_edit_keeps_history_and_sets_edited_at(client, db, pair):
    student, tutor, cid = pair
    message = send(client, student, cid, "first draft")
    response = client.put(
        f"/api/chat/messages/{message['id']}", json={"content": "second"}, headers=student.headers
    )
    assert response.status_code == 200
    edited = response.json()["message"]
    assert edited["content"] == "second" and edited["edited_at"] is not None
    client.put(f"/api/chat/messages/{message['id']}", json={"content": "third"}, headers=student.headers)
    with db.transaction() as cur:
        cur.execute(
            "SELECT previous_content FROM chat_message_edits WHERE message_id = %s ORDER BY id",
            (message["id"],),
        )
        assert [r["previous_content"] for r in cur.fetchall()] == ["first draft", "second"]
    shown = client.get(f"/api/chat/messages/{cid}", headers=tutor.headers).json()["messages"]
    assert [(m["content"], m["edited_at"] is not None) for m in shown] == [("third", True)]
    for body in ({"content": ""}, {"content": "z" * 4001}, {}):
        assert (
            client.put(f"/api/chat/messages/{message['id']}", json=body, headers=student.headers).status_code
            == 422
        )


def test_delete_is_soft_and_final(client, db, pair):
    student, tutor, cid = pair
    message = send(client, student, cid, "regret")
    response = client.delete(f"/api/chat/messages/{message['id']}", headers=student.headers)
    assert response.status_code == 200
    gone = response.json()["message"]
    assert gone["is_deleted"] is True and gone["content"] is None
    assert client.delete(f"/api/chat/messages/{message['id']}", headers=student.headers).status_code == 200
    with db.transaction() as cur:
        cur.execute(
            "SELECT content, is_deleted, deleted_at FROM chat_messages WHERE id = %s", (message["id"],)
        )
        row = cur.fetchone()
    assert row["content"] == "regret" and row["is_deleted"] and row["deleted_at"] is not None
    shown = client.get(f"/api/chat/messages/{cid}", headers=tutor.headers).json()["messages"]
    assert [(m["id"], m["content"], m["is_deleted"]) for m in shown] == [(message["id"], None, True)]
    last = client.get("/api/chat/conversations", headers=tutor.headers).json()["conversations"][0][
        "last_message"
    ]
    assert last["id"] == message["id"] and last["content"] is None
    before = snapshot(db)
    edit = client.put(
        f"/api/chat/messages/{message['id']}", json={"content": "undo"}, headers=student.headers
    )
    assert edit.status_code == 409
    assert snapshot(db) == before


def test_server_messages_cannot_be_edited_or_deleted_through_chat(client, db, pair):
    student, tutor, cid = pair
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO chat_messages
                   (conversation_id, sender_user_id, message_type, content, media_metadata)
               VALUES (%s, %s, 'session_request', 'Session request', '{"status": "pending"}') RETURNING id""",
            (cid, student.id),
        )
        card = cur.fetchone()["id"]
    before = snapshot(db)
    assert (
        client.put(f"/api/chat/messages/{card}", json={"content": "x"}, headers=student.headers).status_code
        == 409
    )
    assert client.delete(f"/api/chat/messages/{card}", headers=student.headers).status_code == 409
    assert snapshot(db) == before
    shown = client.get(f"/api/chat/messages/{cid}", headers=tutor.headers).json()["messages"]
    assert shown[0]["media_metadata"] == {"status": "pending"}
