"""Who may see and change what: outsiders get 404 and write nothing; user_id must be the caller."""

from __future__ import annotations

import pytest

from tests.support.chat import open_conversation, send, snapshot
from tests.support.ws import close_code


@pytest.fixture
def scene(client, factory):
    """A conversation of a student and a tutor with two messages, and an outsider."""
    student, tutor, outsider = factory.student(), factory.tutor(packages=0), factory.student()
    conversation_id = open_conversation(client, student, tutor)
    first = send(client, student, conversation_id, "Hello tutor")
    second = send(client, tutor, conversation_id, "Hello student")
    # The outsider has a conversation of their own, which must not open the door to this one.
    open_conversation(client, outsider, tutor)
    return {
        "student": student,
        "tutor": tutor,
        "outsider": outsider,
        "conversation_id": conversation_id,
        "first": first,
        "second": second,
    }


def outsider_requests(scene) -> list[tuple[str, str, dict | None]]:
    cid, mid = scene["conversation_id"], scene["first"]["id"]
    return [
        ("GET", f"/api/chat/conversations/{cid}", None),
        ("GET", f"/api/chat/messages/{cid}", None),
        ("GET", f"/api/chat/messages/{cid}?before_id={mid + 1}", None),
        ("GET", f"/api/chat/messages/{cid}?after_id=0", None),
        ("POST", "/api/chat/messages", {"conversation_id": cid, "content": "let me in"}),
        ("POST", "/api/chat/messages", {"conversation_id": cid, "content": "x", "client_message_id": "c1"}),
        ("POST", "/api/chat/messages", {"conversation_id": cid, "content": "x", "reply_to_id": mid}),
        ("PUT", f"/api/chat/messages/{mid}", {"content": "rewritten"}),
        ("DELETE", f"/api/chat/messages/{mid}", None),
        ("POST", f"/api/chat/conversations/{cid}/read", {"last_read_message_id": mid}),
        ("GET", f"/api/chat/conversations/{cid}/read-status", None),
    ]


def test_outsider_gets_404_everywhere_and_writes_nothing(client, db, scene):
    outsider = scene["outsider"]
    before = snapshot(db)
    for method, path, body in outsider_requests(scene):
        response = client.request(method, path, json=body, headers=outsider.headers)
        assert response.status_code == 404, (method, path, response.text)
        assert set(response.json()) == {"detail", "code"}
    assert snapshot(db) == before
    listed = client.get("/api/chat/conversations", headers=outsider.headers).json()["conversations"]
    assert scene["conversation_id"] not in [c["id"] for c in listed]


def test_unknown_ids_look_like_foreign_ones(client, scene):
    """A missing conversation or message answers exactly like one the caller may not see."""
    student = scene["student"]
    for method, path, body in [
        ("GET", "/api/chat/conversations/999999", None),
        ("GET", "/api/chat/messages/999999", None),
        ("POST", "/api/chat/messages", {"conversation_id": 999999, "content": "x"}),
        ("PUT", "/api/chat/messages/999999", {"content": "x"}),
        ("DELETE", "/api/chat/messages/999999", None),
        ("POST", "/api/chat/conversations/999999/read", {"last_read_message_id": 1}),
        ("GET", "/api/chat/conversations/999999/read-status", None),
    ]:
        response = client.request(method, path, json=body, headers=student.headers)
        assert response.status_code == 404, (method, path, response.text)


def test_foreign_user_id_parameter_is_403_and_writes_nothing(client, db, scene):
    student, tutor = scene["student"], scene["tutor"]
    requests = [
        ("GET", "/api/chat/conversations", None),
        ("POST", "/api/chat/conversations", {"participant_user_ids": [scene["outsider"].id]}),
        *outsider_requests(scene),
    ]
    before = snapshot(db)
    for method, path, body in requests:
        joiner = "&" if "?" in path else "?"
        response = client.request(
            method, f"{path}{joiner}user_id={tutor.id}", json=body, headers=student.headers
        )
        assert response.status_code == 403, (method, path, response.text)
    assert snapshot(db) == before
    # The caller's own id is accepted (older clients always send it).
    own = client.get(f"/api/chat/conversations?user_id={student.id}", headers=student.headers)
    assert own.status_code == 200
    assert [c["id"] for c in own.json()["conversations"]] == [scene["conversation_id"]]


def test_chat_needs_a_valid_token_and_an_active_user(client, db, scene):
    student = scene["student"]
    assert client.get("/api/chat/conversations").status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert client.get("/api/chat/conversations", headers=bad).status_code == 401
    with db.transaction() as cur:
        cur.execute("UPDATE users SET is_active = false WHERE id = %s", (student.id,))
    before = snapshot(db)
    response = client.post(
        "/api/chat/messages",
        json={"conversation_id": scene["conversation_id"], "content": "still here?"},
        headers=student.headers,
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/chat/conversations", headers=student.headers).status_code == 401
    assert snapshot(db) == before


def test_only_the_sender_edits_or_deletes(client, db, scene):
    tutor, first = scene["tutor"], scene["first"]
    before = snapshot(db)
    edit = client.put(
        f"/api/chat/messages/{first['id']}", json={"content": "mine now"}, headers=tutor.headers
    )
    assert edit.status_code == 403
    delete = client.delete(f"/api/chat/messages/{first['id']}", headers=tutor.headers)
    assert delete.status_code == 403
    assert snapshot(db) == before


def test_every_user_id_value_must_be_the_caller(client, db, scene):
    """A repeated user_id is read differently by different layers: any foreign value is a 403."""
    student, tutor, cid = scene["student"], scene["tutor"], scene["conversation_id"]
    before = snapshot(db)
    for query in (f"user_id={tutor.id}&user_id={student.id}", f"user_id={student.id}&user_id={tutor.id}"):
        listed = client.get(f"/api/chat/conversations?{query}", headers=student.headers)
        assert listed.status_code == 403, query
        sent = client.post(
            f"/api/chat/messages?{query}",
            json={"conversation_id": cid, "content": "x"},
            headers=student.headers,
        )
        assert sent.status_code == 403, query
        with client.websocket_connect(f"/api/chat/ws?token={student.token}&{query}") as ws:
            assert close_code(ws) == 4403
    assert snapshot(db) == before
    both = client.get(
        f"/api/chat/conversations?user_id={student.id}&user_id={student.id}", headers=student.headers
    )
    assert both.status_code == 200
