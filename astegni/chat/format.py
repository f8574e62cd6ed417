"""The JSON shapes of the chat: messages (shared by the chat API, its events and session requests)
and conversations."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_jsonable_python


def message_json(row: dict[str, Any]) -> dict[str, Any]:
    deleted = row["is_deleted"]
    return {
        "id": row["id"],
        "conversation_id": row["conversation_id"],
        "sender_user_id": row["sender_user_id"],
        "sender_name": row.get("sender_name"),
        "message_type": row["message_type"],
        "content": None if deleted else row["content"],
        "media_metadata": None if deleted else row["media_metadata"],
        "reply_to_id": row["reply_to_id"],
        "client_message_id": row["client_message_id"],
        "is_deleted": deleted,
        "edited_at": row["edited_at"],
        "created_at": row["created_at"],
    }


def message_event(row: dict[str, Any]) -> dict[str, Any]:
    """The data of a message.* event: the message exactly as the REST API renders it (pydantic's
    ISO timestamps; events.publish would otherwise render datetimes with str())."""
    return {"conversation_id": row["conversation_id"], "message": to_jsonable_python(message_json(row))}


def _last_message(row: dict[str, Any]) -> dict[str, Any] | None:
    if row["last_message_id"] is None:
        return None
    return {
        "id": row["last_message_id"],
        "content": None if row["last_message_is_deleted"] else row["last_message_content"],
        "message_type": row["last_message_type"],
        "sender_user_id": row["last_message_sender_user_id"],
        "created_at": row["last_message_created_at"],
        "is_deleted": row["last_message_is_deleted"],
    }


def conversation_json(row: dict[str, Any], caller_id: int) -> dict[str, Any]:
    """A row of the conversation_page query, as seen by caller_id."""
    participants = row["participants"]
    other = None
    if row["type"] == "direct":
        other = next(
            ({"id": p["user_id"], "name": p["name"]} for p in participants if p["user_id"] != caller_id),
            None,
        )
    return {
        "id": row["id"],
        "type": row["type"],
        "name": row["name"],
        "created_by_user_id": row["created_by_user_id"],
        "created_at": row["created_at"],
        "last_message_at": row["last_message_at"],
        "last_message": _last_message(row),
        "unread_count": row["unread_count"],
        "last_read_message_id": row["last_read_message_id"],
        "other_user": other,
        "participants": participants,
    }
