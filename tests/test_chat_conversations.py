"""Conversations: get-or-create of the direct pair, the list (order, paging, unread), legacy rows."""

from __future__ import annotations

import base64

import astegni.chat.service
from tests.support.chat import open_conversation, send, snapshot


def test_get_or_create_returns_the_one_direct_conversation(client, db, factory):
    student, tutor = factory.student(), factory.tutor(packages=0)
    created = client.post(
        "/api/chat/conversations",
        json={"type": "direct", "participant_user_ids": [tutor.id]},
        headers=student.headers,
    )
    assert created.status_code == 201
    body = created.json()
    assert body["type"] == "direct"
    assert body["created_by_user_id"] == student.id
    assert body["other_user"] == {"id": tutor.id, "name": tutor.full_name}
    assert [p["user_id"] for p in body["participants"]] == sorted([student.id, tutor.id])
    assert body["last_message"] is None and body["unread_count"] == 0
    # The other side, and an older client that lists the caller too, get the same conversation.
    again = client.post(
        "/api/chat/conversations", json={"participant_user_ids": [student.id]}, headers=tutor.headers
    )
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    both = client.post(
        "/api/chat/conversations",
        json={"participant_user_ids": [student.id, tutor.id]},
        headers=student.headers,
    )
    assert both.status_code == 200 and both.json()["id"] == body["id"]
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM conversations")
        assert cur.fetchone()["n"] == 1
    detail = client.get(f"/api/chat/conversations/{body['id']}", headers=tutor.headers)
    assert detail.status_code == 200
    assert detail.json()["other_user"] == {"id": student.id, "name": student.full_name}


def test_create_conversation_refusals_write_nothing(client, db, factory):
    student, other, third = factory.student(), factory.student(), factory.student()
    with db.transaction() as cur:
        cur.execute("UPDATE users SET is_active = false WHERE id = %s", (third.id,))
    before = snapshot(db)
    cases = [
        ({"participant_user_ids": [student.id]}, 400),  # yourself
        ({"participant_user_ids": [999999]}, 404),  # no such user
        ({"participant_user_ids": [third.id]}, 404),  # deactivated
        ({"participant_user_ids": [other.id, third.id]}, 422),  # not a pair
        ({"participant_user_ids": []}, 422),
        ({"participant_user_ids": [0]}, 422),
        ({"participant_user_ids": [2**31]}, 422),
        ({"type": "group", "participant_user_ids": [other.id]}, 422),
        ({}, 422),
    ]
    for body, status in cases:
        response = client.post("/api/chat/conversations", json=body, headers=student.headers)
        assert response.status_code == status, (body, response.text)
        assert "detail" in response.json()
    assert snapshot(db) == before


def test_list_is_ordered_by_latest_activity_and_pages_by_cursor(client, factory):
    me = factory.student()
    others = [factory.tutor(packages=0) for _ in range(5)]
    ids = [open_conversation(client, me, other) for other in others]  # created in this order
    # Activity: a message in the second-oldest conversation, then in the oldest one.
    send(client, others[1], ids[1], "ping")
    send(client, me, ids[0], "pong")
    expected = [ids[0], ids[1], ids[4], ids[3], ids[2]]

    full = client.get("/api/chat/conversations", headers=me.headers).json()
    assert [c["id"] for c in full["conversations"]] == expected
    assert full["next_cursor"] is None

    seen, cursor, pages = [], None, 0
    while True:
        url = "/api/chat/conversations?limit=2" + (f"&before={cursor}" if cursor else "")
        page = client.get(url, headers=me.headers)
        assert page.status_code == 200
        pages += 1
        seen += [c["id"] for c in page.json()["conversations"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and pages == 3

    # New activity moves a conversation to the top.
    send(client, others[2], ids[2], "me too")
    top = client.get("/api/chat/conversations?limit=1", headers=me.headers).json()
    assert [c["id"] for c in top["conversations"]] == [ids[2]]
    assert top["conversations"][0]["last_message"]["content"] == "me too"


def test_list_item_shape_last_message_and_unread(client, factory):
    student, tutor = factory.student(), factory.tutor(packages=0)
    cid = open_conversation(client, student, tutor)
    send(client, student, cid, "one")
    send(client, student, cid, "two")
    mine = send(client, tutor, cid, "three")
    item = client.get("/api/chat/conversations", headers=student.headers).json()["conversations"][0]
    assert set(item) >= {
        "id",
        "type",
        "name",
        "created_by_user_id",
        "last_message",
        "unread_count",
        "other_user",
        "participants",
    }
    assert item["last_message"] == {
        "id": mine["id"],
        "content": "three",
        "message_type": "text",
        "sender_user_id": tutor.id,
        "created_at": mine["created_at"],
        "is_deleted": False,
    }
    assert item["unread_count"] == 1  # the student's own messages never count
    assert item["other_user"] == {"id": tutor.id, "name": tutor.full_name}
    tutor_item = client.get("/api/chat/conversations", headers=tutor.headers).json()["conversations"][0]
    assert tutor_item["unread_count"] == 2
    assert tutor_item["other_user"]["id"] == student.id


def test_list_is_one_query_whatever_the_page_size(client, factory, monkeypatch):
    me = factory.student()
    for _ in range(6):
        cid = open_conversation(client, me, factory.tutor(packages=0))
        send(client, me, cid, "hi")
    calls = []
    real = astegni.chat.service.fetch_all
    monkeypatch.setattr(
        astegni.chat.service,
        "fetch_all",
        lambda cur, query, params: calls.append(query.name) or real(cur, query, params),
    )
    response = client.get("/api/chat/conversations?limit=50", headers=me.headers)
    assert len(response.json()["conversations"]) == 6
    assert calls == ["conversation_page"]


def test_bad_paging_parameters_are_422(client, factory):
    me = factory.student()
    for query in ["limit=0", "limit=101", "before=not-a-cursor", "before=" + "x" * 201, "limit=abc"]:
        response = client.get(f"/api/chat/conversations?{query}", headers=me.headers)
        assert response.status_code == 422, query


def test_legacy_rows_show_like_any_other(client, db, factory):
    """Rows written before the migration: profile columns set, user ids back-filled, a second
    participant row of one user (duplicate_of_id) and a message whose sender is unknown."""
    student, tutor = factory.student(), factory.tutor(packages=0)
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO conversations (type, created_by_user_id, created_by_profile_id,
                   created_by_profile_type, last_message_at, created_at)
               VALUES ('direct', %s, %s, 'student', now() - interval '1 day', now() - interval '2 days')
               RETURNING id""",
            (student.id, student.role_ids["student"]),
        )
        cid = cur.fetchone()["id"]
        cur.execute(
            """INSERT INTO conversation_participants (conversation_id, user_id, profile_id, profile_type)
               VALUES (%s, %s, %s, 'student'), (%s, %s, %s, 'tutor') RETURNING id""",
            (cid, student.id, student.role_ids["student"], cid, tutor.id, tutor.role_ids["tutor"]),
        )
        student_row = cur.fetchone()["id"]
        cur.execute(
            """INSERT INTO conversation_participants
                   (conversation_id, user_id, profile_id, profile_type, duplicate_of_id)
               VALUES (%s, %s, 999, 'parent', %s)""",
            (cid, student.id, student_row),
        )
        cur.execute(
            """INSERT INTO chat_messages (conversation_id, sender_user_id, sender_profile_id,
                   sender_profile_type, content, created_at)
               VALUES (%s, %s, %s, 'tutor', 'legacy hello', now() - interval '1 day' - interval '1 minute'),
                      (%s, NULL, 4242, 'student', 'from nobody', now() - interval '1 day')""",
            (cid, tutor.id, tutor.role_ids["tutor"], cid),
        )
    for user, other in [(student, tutor), (tutor, student)]:
        listed = client.get("/api/chat/conversations", headers=user.headers).json()["conversations"]
        assert [c["id"] for c in listed] == [cid]
        assert listed[0]["other_user"]["id"] == other.id
        assert [p["user_id"] for p in listed[0]["participants"]] == sorted([student.id, tutor.id])
        assert listed[0]["last_message"]["content"] == "from nobody"
        assert listed[0]["last_message"]["sender_user_id"] is None
        messages = client.get(f"/api/chat/messages/{cid}", headers=user.headers).json()["messages"]
        assert [(m["content"], m["sender_user_id"]) for m in messages] == [
            ("legacy hello", tutor.id),
            ("from nobody", None),
        ]
    assert (
        client.get("/api/chat/conversations", headers=student.headers).json()["conversations"][0][
            "unread_count"
        ]
        == 2
    )
    # The legacy conversation takes new messages and read markers like any other.
    new = send(client, student, cid, "new era")
    read = client.post(
        f"/api/chat/conversations/{cid}/read", json={"last_read_message_id": new["id"]}, headers=tutor.headers
    )
    assert read.status_code == 200 and read.json()["unread_count"] == 0


def test_a_cursor_no_server_could_write_is_422(client, factory):
    me = factory.student()
    cid = open_conversation(client, me, factory.tutor(packages=0))
    for at in (
        "2026-01-01T00:00:00+23:00",  # past PostgreSQL's offsets
        "2026-01-01T00:00:00-16:30",
        "2026-01-01T00:00:00+03:00",  # the server writes UTC only
        "2026-01-01T00:00:00",
    ):
        raw = base64.urlsafe_b64encode(f"{at}|{cid}".encode()).decode().rstrip("=")
        response = client.get(f"/api/chat/conversations?before={raw}", headers=me.headers)
        assert response.status_code == 422, (at, response.text)
    utc = base64.urlsafe_b64encode(f"2999-01-01T00:00:00+00:00|{cid + 1}".encode()).decode()
    page = client.get(f"/api/chat/conversations?before={utc}", headers=me.headers)
    assert page.status_code == 200 and [c["id"] for c in page.json()["conversations"]] == [cid]
