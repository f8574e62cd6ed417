"""The user-based chat API: conversations and read markers here, messages in
chat_messages.py, the WebSocket in realtime.py. The caller is always the token's user."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field

from astegni.accounts.principal import load_principal
from astegni.chat import blocks as chat_blocks
from astegni.chat import messages as chat_messages
from astegni.chat.conversations import get_or_create_direct
from astegni.chat.format import conversation_json
from astegni.chat.messages import AUTH_ERRORS, NOT_FOUND, ConversationIdPath, queries
from astegni.core import rate_limits
from astegni.core.deps import AppSettings, Db, TokenClaims
from astegni.core.errors import BadRequest, NotFound, Unprocessable
from astegni.core.events import publish
from astegni.core.models import BIGINT_MAX, INT_MAX, ApiModel
from astegni.core.queries import fetch_all, fetch_one
from astegni.core.security import Claims

router = APIRouter(prefix="/api/chat", tags=["chat"])
router.include_router(chat_messages.router)
router.include_router(chat_blocks.router)


class ConversationIn(ApiModel):
    type: Literal["direct"] = "direct"
    # The other user; older clients also list the caller, who is ignored.
    participant_user_ids: Annotated[
        list[Annotated[int, Field(gt=0, le=INT_MAX)]], Field(min_length=1, max_length=2)
    ]


class ReadIn(ApiModel):
    last_read_message_id: Annotated[int, Field(gt=0, le=BIGINT_MAX)]


# ---------------------------------------------------------------------------- cursor


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


# ---------------------------------------------------------------------------- conversations


@router.get("/conversations", responses=AUTH_ERRORS | {422: {"description": "Invalid limit or cursor"}})
async def list_conversations(
    claims: TokenClaims,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
) -> dict[str, Any]:
    """The caller's conversations, latest activity first (last message, else creation)."""
    before_at, before_id = decode_cursor(before) if before else (None, None)
    return await db.run(_list_conversations, claims, limit, before_at, before_id)


def _page(cur, user_id: int, **params: Any) -> list[dict[str, Any]]:
    values = {"user_id": user_id, "only_id": None, "before_at": None, "before_id": None, "limit": 1}
    return fetch_all(cur, queries.conversation_page, values | params)


def _list_conversations(
    cur, claims: Claims, limit: int, before_at: datetime | None, before_id: int | None
) -> dict[str, Any]:
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
        raise NotFound("Conversation not found", code="conversation_not_found")
    return conversation_json(rows[0], user_id)


@router.post(
    "/conversations",
    responses=AUTH_ERRORS
    | {
        200: {"description": "The pair's existing direct conversation"},
        201: {"description": "Created"},
        400: {"description": "A conversation with yourself"},
        404: {"description": "No such user, or not one the caller may reach"},
        422: {"description": "Invalid body, or more than one other participant"},
        429: {"description": "Too many conversation starts; see Retry-After"},
    },
)
async def create_conversation(
    body: ConversationIn, claims: TokenClaims, db: Db, settings: AppSettings, response: Response
) -> dict[str, Any]:
    """Get-or-create the one direct conversation between the caller and the other user: a
    tutor, the caller's child or parent, or someone on a session request with the caller."""
    others = set(body.participant_user_ids) - {claims.user_id}
    if not others:
        raise BadRequest("You cannot start a conversation with yourself", code="conversation_with_self")
    if len(others) > 1:
        raise Unprocessable("A direct conversation has exactly one other participant")
    # Counted in a transaction of its own, so that refused attempts count too: ids cannot be
    # probed quickly.
    await db.run(_count_start, claims, settings.conversation_create_rate_per_hour)
    conversation, created = await db.run(_get_or_create, claims, others.pop())
    response.status_code = 201 if created else 200
    return conversation


def _count_start(cur, claims: Claims, limit: int) -> None:
    load_principal(cur, claims)
    rate_limits.hit(cur, "conversation_create", claims.user_id, limit, window_seconds=3600)


def _get_or_create(cur, claims: Claims, other_user_id: int) -> tuple[dict[str, Any], bool]:
    conversation_id, created = get_or_create_direct(cur, claims.user_id, other_user_id)
    return _conversation(cur, claims.user_id, conversation_id), created


@router.get("/conversations/{conversation_id}", responses=AUTH_ERRORS | NOT_FOUND)
async def get_conversation(
    conversation_id: ConversationIdPath, claims: TokenClaims, db: Db
) -> dict[str, Any]:
    return await db.run(_get_conversation, claims, conversation_id)


def _get_conversation(cur, claims: Claims, conversation_id: int) -> dict[str, Any]:
    load_principal(cur, claims)
    return _conversation(cur, claims.user_id, conversation_id)


# ---------------------------------------------------------------------------- read markers


@router.post(
    "/conversations/{conversation_id}/read",
    responses=AUTH_ERRORS
    | NOT_FOUND
    | {422: {"description": "Invalid body, or the message is not one of this conversation"}},
)
async def mark_read(
    conversation_id: ConversationIdPath, body: ReadIn, claims: TokenClaims, db: Db
) -> dict[str, Any]:
    """Moves the caller's read marker forward to the message; an older message leaves it as is."""
    return await db.run(_mark_read, claims, conversation_id, body.last_read_message_id)


def _mark_read(cur, claims: Claims, conversation_id: int, message_id: int) -> dict[str, Any]:
    load_principal(cur, claims)
    row = fetch_one(
        cur,
        queries.mark_read,
        {"conversation_id": conversation_id, "user_id": claims.user_id, "message_id": message_id},
    )
    if not row["is_member"]:
        raise NotFound("Conversation not found", code="conversation_not_found")
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


@router.get("/conversations/{conversation_id}/read-status", responses=AUTH_ERRORS | NOT_FOUND)
async def read_status(conversation_id: ConversationIdPath, claims: TokenClaims, db: Db) -> dict[str, Any]:
    """Each participant's read marker."""
    return await db.run(_read_status, claims, conversation_id)


def _read_status(cur, claims: Claims, conversation_id: int) -> dict[str, Any]:
    load_principal(cur, claims)
    rows = fetch_all(
        cur, queries.read_status, {"conversation_id": conversation_id, "user_id": claims.user_id}
    )
    if not rows:
        raise NotFound("Conversation not found", code="conversation_not_found")
    return {"conversation_id": conversation_id, "participants": rows}
