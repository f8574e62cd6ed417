"""The chat's units of work, `fn(cur, ...)` for Database.run: conversations, messages, read
markers and blocks.

The caller is the token's user. A caller who is not a participant of a conversation gets 404 for
it and its messages, and nothing is written: every write statement is conditioned on the
membership row, never checked first and written after.

While A blocks B: B's messages and edits in a conversation with A are refused, B cannot start a
conversation with A (404, as for a missing user), and A gets no real-time event that B caused
(realtime_event in astegni/core/functions.sql). History stays readable to both, and A may still
write to B.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Any

from astegni.accounts.principal import load_principal
from astegni.chat.format import conversation_json, message_event, message_json
from astegni.chat.models import MessageIn
from astegni.core import rate_limits
from astegni.core.database import Database
from astegni.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from astegni.core.events import publish
from astegni.core.models import BIGINT_MAX, INT_MAX
from astegni.core.queries import Queries, execute, fetch_all, fetch_one
from astegni.core.security import Claims

queries = Queries("chat/queries.sql")

BLOCKED = "You cannot message this user"
PAST_PARTICIPLE = {"edit": "edited", "delete": "deleted"}


def conversation_not_found() -> NotFound:
    return NotFound("Conversation not found", code="conversation_not_found")


def _count_hourly(cur, claims: Claims, bucket: str, limit: int) -> None:
    load_principal(cur, claims)
    rate_limits.hit(cur, bucket, claims.user_id, limit, window_seconds=3600)


# ---------------------------------------------------------------------------- conversations


def encode_cursor(activity_at: datetime, conversation_id: int) -> str:
    raw = f"{activity_at.isoformat()}|{conversation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, conversation_id = raw.split("|")
        parsed = datetime.fromisoformat(at), int(conversation_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise Unprocessable("Invalid cursor") from None
    # The server writes UTC times only; any other offset is forged (and one past +-16:00 is
    # out of PostgreSQL's range).
    if parsed[0].utcoffset() != timedelta(0) or not 0 < parsed[1] <= INT_MAX:
        raise Unprocessable("Invalid cursor")
    return parsed


def _page(cur, user_id: int, **params: Any) -> list[dict[str, Any]]:
    values = {"user_id": user_id, "only_id": None, "before_at": None, "before_id": None, "limit": 1}
    return fetch_all(cur, queries.conversation_page, values | params)


def list_conversations(cur, claims: Claims, limit: int, before: str | None) -> dict[str, Any]:
    """One page of the caller's conversations; `before` is the previous page's next_cursor."""
    before_at, before_id = decode_cursor(before) if before else (None, None)
    load_principal(cur, claims)
    rows = _page(cur, claims.user_id, before_at=before_at, before_id=before_id, limit=limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["activity_at"], rows[-1]["id"])
    return {
        "conversations": [conversation_json(row, claims.user_id) for row in rows],
        "next_cursor": next_cursor,
    }


def _conversation(cur, user_id: int, conversation_id: int) -> dict[str, Any]:
    rows = _page(cur, user_id, only_id=conversation_id)
    if not rows:
        raise conversation_not_found()
    return conversation_json(rows[0], user_id)


def get_conversation(cur, claims: Claims, conversation_id: int) -> dict[str, Any]:
    load_principal(cur, claims)
    return _conversation(cur, claims.user_id, conversation_id)


async def start(db: Database, claims: Claims, other_user_id: int, limit: int) -> tuple[dict[str, Any], bool]:
    """POST /api/chat/conversations: the attempt is counted in a transaction of its own, so that
    refused ones count too and nobody can probe user ids quickly; then start_conversation."""
    await db.run(_count_hourly, claims, "conversation_create", limit)
    return await db.run(start_conversation, claims, other_user_id)


def start_conversation(cur, claims: Claims, other_user_id: int) -> tuple[dict[str, Any], bool]:
    """The one direct conversation of the caller and the other user (created if new), and
    whether it was.

    A user the caller may not reach (a stranger's child above all), who blocks the caller, is
    deactivated or does not exist: the same 404, so that the answer tells a stranger nothing."""
    row = fetch_one(
        cur,
        queries.conversation_get_or_create_direct,
        {"caller_id": claims.user_id, "other_id": other_user_id},
    )
    if row is None:
        raise NotFound("User not found")
    return _conversation(cur, claims.user_id, row["id"]), row["created"]


# ---------------------------------------------------------------------------- read markers


def mark_read(cur, claims: Claims, conversation_id: int, message_id: int) -> dict[str, Any]:
    load_principal(cur, claims)
    row = fetch_one(
        cur,
        queries.mark_read,
        {"conversation_id": conversation_id, "user_id": claims.user_id, "message_id": message_id},
    )
    if not row["is_member"]:
        raise conversation_not_found()
    if not row["message_found"]:
        raise Unprocessable("last_read_message_id must be a message of this conversation")
    result = {
        "conversation_id": conversation_id,
        "user_id": claims.user_id,
        "last_read_message_id": row["last_read_message_id"],
    }
    if row["moved"]:
        publish(cur, "read.updated", row["recipients"], result, actor=claims.user_id)
    return result | {"unread_count": row["unread_count"]}


def read_status(cur, claims: Claims, conversation_id: int) -> dict[str, Any]:
    load_principal(cur, claims)
    rows = fetch_all(
        cur, queries.read_status, {"conversation_id": conversation_id, "user_id": claims.user_id}
    )
    if not rows:
        raise conversation_not_found()
    return {"conversation_id": conversation_id, "participants": rows}


# ---------------------------------------------------------------------------- messages


def list_messages(
    cur, claims: Claims, conversation_id: int, limit: int, before_id: int | None, after_id: int | None
) -> dict[str, Any]:
    load_principal(cur, claims)
    params = {
        "conversation_id": conversation_id,
        "user_id": claims.user_id,
        "before_id": before_id or BIGINT_MAX,  # the latest page: below every id
        "after_id": after_id,
        "limit": limit + 1,  # one more than asked: has_more
    }
    rows = fetch_all(cur, queries.messages_after if after_id is not None else queries.messages_before, params)
    if not rows:
        raise conversation_not_found()
    rows = [row for row in rows if row["id"] is not None]
    has_more = len(rows) > limit
    rows = rows[:limit]
    if after_id is None:
        rows.reverse()
    return {"messages": [message_json(row) for row in rows], "has_more": has_more}


def send_message(cur, claims: Claims, body: MessageIn, rate_limit: int) -> dict[str, Any]:
    load_principal(cur, claims)
    rate_limits.hit(cur, "chat_send", claims.user_id, rate_limit, window_seconds=60)
    row = fetch_one(
        cur,
        queries.send_message,
        {
            "conversation_id": body.conversation_id,
            "user_id": claims.user_id,
            "content": body.content,
            "reply_to_id": body.reply_to_id,
            "client_message_id": body.client_message_id,
        },
    )
    if not row["is_member"]:
        raise conversation_not_found()
    if row["blocked"]:
        raise Forbidden(BLOCKED, code="cannot_message")
    if row["id"] is None:
        if body.client_message_id is not None:
            first = fetch_one(
                cur,
                queries.message_by_client_id,
                {"user_id": claims.user_id, "client_message_id": body.client_message_id},
            )
            if first is not None:
                if first["conversation_id"] != body.conversation_id:
                    raise Conflict("client_message_id was already used for another conversation")
                return message_json(first)  # a retry: the first message, no second event
        raise Unprocessable("reply_to_id must be a message of this conversation")
    publish(cur, "message.created", row["recipients"], message_event(row), actor=claims.user_id)
    return message_json(row)


def _own_text_message(cur, claims: Claims, message_id: int, verb: str) -> dict[str, Any]:
    load_principal(cur, claims)
    row = fetch_one(cur, queries.lock_message, {"message_id": message_id, "user_id": claims.user_id})
    if row is None:
        raise NotFound("Message not found", code="message_not_found")
    if row["sender_user_id"] != claims.user_id:
        raise Forbidden(f"Only the sender can {verb} this message", code="not_sender")
    if row["message_type"] != "text":
        raise Conflict(f"Only text messages can be {PAST_PARTICIPLE[verb]} here")
    return row


def edit_message(cur, claims: Claims, message_id: int, content: str) -> dict[str, Any]:
    """Sender only; the previous content is kept in chat_message_edits."""
    row = _own_text_message(cur, claims, message_id, "edit")
    if row["is_deleted"]:
        raise Conflict("The message was deleted", code="message_deleted")
    if row["blocked"]:  # new words to someone who blocks the sender, as a send would be
        raise Forbidden(BLOCKED, code="cannot_message")
    if row["content"] == content:
        return message_json(row)  # nothing changes: no history entry, no event
    row = fetch_one(cur, queries.edit_message, {"message_id": message_id, "content": content})
    publish(cur, "message.updated", row["recipients"], message_event(row), actor=claims.user_id)
    return message_json(row)


def delete_message(cur, claims: Claims, message_id: int) -> dict[str, Any]:
    """Sender only; soft: the row stays and its content is hidden. Deleting twice is a no-op."""
    row = _own_text_message(cur, claims, message_id, "delete")
    if row["is_deleted"]:
        return message_json(row)
    row = fetch_one(cur, queries.delete_message, {"message_id": message_id})
    publish(cur, "message.deleted", row["recipients"], message_event(row), actor=claims.user_id)
    return message_json(row)


# ---------------------------------------------------------------------------- blocks


async def block(db: Database, claims: Claims, user_id: int, limit: int) -> tuple[dict[str, Any], bool]:
    """POST /api/chat/blocks: counted like a conversation start (a refused block counts too), then
    block_user."""
    await db.run(_count_hourly, claims, "chat_block", limit)
    return await db.run(block_user, claims, user_id)


def block_user(cur, claims: Claims, user_id: int) -> tuple[dict[str, Any], bool]:
    """The block of user_id (made if new) and whether this call made it."""
    params = {"blocker_id": claims.user_id, "user_id": user_id}
    row = fetch_one(cur, queries.block_add, params)
    if row is None:
        raise NotFound("User not found")
    created = row.pop("created")
    if not created:  # blocked before, maybe by a concurrent call this statement could not see
        row = fetch_one(cur, queries.block_get, params) or row
    return row, created


def list_blocks(cur, claims: Claims) -> list[dict[str, Any]]:
    """The users the caller blocks, newest first."""
    load_principal(cur, claims)
    return fetch_all(cur, queries.block_list, {"blocker_id": claims.user_id})


def unblock_user(cur, claims: Claims, user_id: int, rate_limit: int) -> None:
    _count_hourly(cur, claims, "chat_block", rate_limit)
    execute(cur, queries.block_remove, {"blocker_id": claims.user_id, "user_id": user_id})
