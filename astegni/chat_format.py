"""The JSON shape of a chat message, shared by the chat API, its events and session requests."""

from __future__ import annotations

from typing import Any

# The columns every message projection selects, so message_json() can read them.
MESSAGE_COLUMNS = """
    m.id, m.conversation_id, m.sender_user_id, m.message_type, m.content, m.media_metadata,
    m.reply_to_id, m.client_message_id, m.is_deleted, m.edited_at, m.created_at
"""


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
