"""Helpers of the chat tests: conversations and messages through the real API, table snapshots."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from astegni.core.database import Database
from tests.support.factories import TestUser

CHAT_TABLES = ("conversations", "conversation_participants", "chat_messages", "chat_message_edits")


def open_conversation(client: TestClient, user: TestUser, other: TestUser) -> int:
    response = client.post(
        "/api/chat/conversations", json={"participant_user_ids": [other.id]}, headers=user.headers
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def send(client: TestClient, user: TestUser, conversation_id: int, content: str, **fields: Any) -> dict:
    body = {"conversation_id": conversation_id, "content": content} | fields
    response = client.post("/api/chat/messages", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "sent"
    return response.json()["message"]


def snapshot(db: Database) -> dict[str, list[dict]]:
    """Every row of the chat tables, to prove that a refused request wrote nothing."""
    with db.transaction() as cur:
        result = {}
        for table in CHAT_TABLES:
            cur.execute(f"SELECT * FROM {table} ORDER BY id")
            result[table] = [dict(row) for row in cur.fetchall()]
        return result
