"""Chat messages: pages and catch-up, idempotent sends, edits with history, soft deletes.

The caller is the token's user; a caller who is not a participant of the conversation gets 404
for every path here and nothing is written (every write statement is conditioned on the
membership row, never checked first and written after).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from astegni.accounts.principal import load_principal
from astegni.chat.format import message_event, message_json
from astegni.core import rate_limits
from astegni.core.deps import UNAUTHORIZED, AppSettings, Db, TokenClaims
from astegni.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from astegni.core.events import publish
from astegni.core.models import BIGINT_MAX, INT_MAX, ApiModel, Text
from astegni.core.queries import Queries, fetch_all, fetch_one
from astegni.core.security import Claims

# Included by astegni.chat.router.router, under its /api/chat prefix.
router = APIRouter()
queries = Queries("chat/queries.sql")

ConversationIdPath = Annotated[int, Path(gt=0, le=INT_MAX)]
MessageIdPath = Annotated[int, Path(gt=0, le=BIGINT_MAX)]
MAX_CONTENT = 4000
BLOCKED = "You cannot message this user"

# The error responses shared by the chat routes (all render as {"detail": ...}).
AUTH_ERRORS: dict[int | str, dict[str, Any]] = UNAUTHORIZED | {
    403: {"description": "A user_id query parameter that is not the caller's"},
}
NOT_FOUND = {404: {"description": "No such conversation or message, or the caller is not a participant"}}


class MessageIn(ApiModel):
    conversation_id: Annotated[int, Field(gt=0, le=INT_MAX)]
    content: Text(MAX_CONTENT, 1)
    # Clients send text only; session_request and system messages come from the server.
    message_type: Literal["text"] = "text"
    # The client's own id: a retried send with the same id returns the first message.
    client_message_id: Text(100, 1) | None = None
    reply_to_id: Annotated[int, Field(gt=0, le=BIGINT_MAX)] | None = None


class MessageEditIn(ApiModel):
    content: Text(MAX_CONTENT, 1)


# ---------------------------------------------------------------------------- reading


@router.get("/messages/{conversation_id}", responses=AUTH_ERRORS | NOT_FOUND)
async def list_messages(
    conversation_id: ConversationIdPath,
    claims: TokenClaims,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    before_id: Annotated[int | None, Query(gt=0, le=BIGINT_MAX)] = None,
    after_id: Annotated[int | None, Query(ge=0, le=BIGINT_MAX)] = None,
) -> dict[str, Any]:
    """Oldest first. Without after_id: the newest `limit` messages below before_id (or the
    latest), has_more = older ones exist. With after_id: the first `limit` messages after it (a
    reconnecting client's catch-up), has_more = newer ones exist."""
    return await db.run(_list_messages, claims, conversation_id, limit, before_id, after_id)


def _list_messages(
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
        raise NotFound("Conversation not found", code="conversation_not_found")
    rows = [row for row in rows if row["id"] is not None]
    has_more = len(rows) > limit
    rows = rows[:limit]
    if after_id is None:
        rows.reverse()
    return {"messages": [message_json(row) for row in rows], "has_more": has_more}


# ---------------------------------------------------------------------------- sending


@router.post(
    "/messages",
    status_code=201,
    responses=AUTH_ERRORS
    | NOT_FOUND
    | {
        403: {"description": "Another participant blocks the caller"},
        409: {"description": "client_message_id already used for a message of another conversation"},
        422: {"description": "Invalid body, or reply_to_id is not a message of this conversation"},
        429: {"description": "Too many messages; see Retry-After"},
    },
)
async def send_message(body: MessageIn, claims: TokenClaims, db: Db, settings: AppSettings) -> dict[str, Any]:
    """A text message; refused while another participant blocks the sender (history stays)."""
    message = await db.run(_send, claims, body, settings.chat_send_rate_per_minute)
    return {"message": message, "status": "sent"}


def _send(cur, claims: Claims, body: MessageIn, rate_limit: int) -> dict[str, Any]:
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
        raise NotFound("Conversation not found", code="conversation_not_found")
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


# ---------------------------------------------------------------------------- changing

SENDER_ERRORS = AUTH_ERRORS | {
    403: {
        "description": "Not the sender, an edit while another participant blocks the sender, "
        "or a user_id query parameter that is not the caller's"
    },
    404: NOT_FOUND[404],
    409: {"description": "The message is deleted, or is not a text message"},
}


@router.put("/messages/{message_id}", responses=SENDER_ERRORS)
async def edit_message(
    message_id: MessageIdPath, body: MessageEditIn, claims: TokenClaims, db: Db
) -> dict[str, Any]:
    """Sender only; the previous content is kept in chat_message_edits."""
    return {"message": await db.run(_edit, claims, message_id, body.content), "status": "edited"}


PAST_PARTICIPLE = {"edit": "edited", "delete": "deleted"}


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


def _edit(cur, claims: Claims, message_id: int, content: str) -> dict[str, Any]:
    row = _own_text_message(cur, claims, message_id, "edit")
    if row["is_deleted"]:
        raise Conflict("The message was deleted", code="message_deleted")
    if row["blocked"]:
        raise Forbidden(
            BLOCKED, code="cannot_message"
        )  # new words to someone who blocks the sender, as a send would be
    if row["content"] == content:
        return message_json(row)  # nothing changes: no history entry, no event
    row = fetch_one(cur, queries.edit_message, {"message_id": message_id, "content": content})
    publish(cur, "message.updated", row["recipients"], message_event(row), actor=claims.user_id)
    return message_json(row)


@router.delete("/messages/{message_id}", responses=SENDER_ERRORS)
async def delete_message(message_id: MessageIdPath, claims: TokenClaims, db: Db) -> dict[str, Any]:
    """Sender only; soft: the row stays and its content is hidden. Deleting twice is a no-op."""
    return {"message": await db.run(_delete, claims, message_id), "status": "deleted"}


def _delete(cur, claims: Claims, message_id: int) -> dict[str, Any]:
    row = _own_text_message(cur, claims, message_id, "delete")
    if row["is_deleted"]:
        return message_json(row)
    row = fetch_one(cur, queries.delete_message, {"message_id": message_id})
    publish(cur, "message.deleted", row["recipients"], message_event(row), actor=claims.user_id)
    return message_json(row)
