"""The chat API (/api/chat): messages, blocks, conversations and read markers. The caller is
always the token's user; the work is astegni/chat/service.py's. The WebSocket is
astegni/realtime/'s."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from astegni.chat import service
from astegni.chat.models import (
    BlockIn,
    BlockListOut,
    BlockOut,
    ConversationIn,
    ConversationOut,
    ConversationPageOut,
    MessageEditIn,
    MessageIn,
    MessagePageOut,
    MessageResultOut,
    ReadIn,
    ReadMarkerOut,
    ReadStatusOut,
)
from astegni.core.deps import UNAUTHORIZED, AppSettings, Db, PathId, TokenClaims
from astegni.core.models import BIGINT_MAX, INT_MAX

router = APIRouter(prefix="/api/chat", tags=["chat"])

ConversationIdPath = Annotated[int, Path(gt=0, le=INT_MAX)]
MessageIdPath = Annotated[int, Path(gt=0, le=BIGINT_MAX)]
Limit = Annotated[int, Query(ge=1, le=100)]

# The error responses shared by the chat routes (all render as {"detail": ...}).
AUTH_ERRORS: dict[int | str, dict[str, Any]] = UNAUTHORIZED | {
    403: {"description": "A user_id query parameter that is not the caller's"},
}
NOT_FOUND = {404: {"description": "No such conversation or message, or the caller is not a participant"}}
SENDER_ERRORS = AUTH_ERRORS | {
    403: {
        "description": "Not the sender, an edit while another participant blocks the sender, "
        "or a user_id query parameter that is not the caller's"
    },
    404: NOT_FOUND[404],
    409: {"description": "The message is deleted, or is not a text message"},
}
TOO_MANY_BLOCKS = {429: {"description": "Too many blocks or unblocks; see Retry-After"}}


# ---------------------------------------------------------------------------- messages


@router.get("/messages/{conversation_id}", response_model=MessagePageOut, responses=AUTH_ERRORS | NOT_FOUND)
async def list_messages(
    conversation_id: ConversationIdPath,
    claims: TokenClaims,
    db: Db,
    limit: Limit = 50,
    before_id: Annotated[int | None, Query(gt=0, le=BIGINT_MAX)] = None,
    after_id: Annotated[int | None, Query(ge=0, le=BIGINT_MAX)] = None,
) -> dict[str, Any]:
    """Oldest first. Without after_id: the newest `limit` messages below before_id (or the
    latest), has_more = older ones exist. With after_id: the first `limit` messages after it (a
    reconnecting client's catch-up), has_more = newer ones exist."""
    return await db.run(service.list_messages, claims, conversation_id, limit, before_id, after_id)


@router.post(
    "/messages",
    status_code=201,
    response_model=MessageResultOut,
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
    message = await db.run(service.send_message, claims, body, settings.chat_send_rate_per_minute)
    return {"message": message, "status": "sent"}


@router.put("/messages/{message_id}", response_model=MessageResultOut, responses=SENDER_ERRORS)
async def edit_message(
    message_id: MessageIdPath, body: MessageEditIn, claims: TokenClaims, db: Db
) -> dict[str, Any]:
    """Sender only; the previous content is kept in chat_message_edits."""
    return {
        "message": await db.run(service.edit_message, claims, message_id, body.content),
        "status": "edited",
    }


@router.delete("/messages/{message_id}", response_model=MessageResultOut, responses=SENDER_ERRORS)
async def delete_message(message_id: MessageIdPath, claims: TokenClaims, db: Db) -> dict[str, Any]:
    """Sender only; soft: the row stays and its content is hidden. Deleting twice is a no-op."""
    return {"message": await db.run(service.delete_message, claims, message_id), "status": "deleted"}


# ---------------------------------------------------------------------------- blocks


@router.post(
    "/blocks",
    status_code=201,
    response_model=BlockOut,
    responses=AUTH_ERRORS
    | TOO_MANY_BLOCKS
    | {
        200: {"description": "Already blocked"},
        400: {"description": "Blocking yourself"},
        404: {"description": "No such user, or none the caller is in contact with"},
    },
)
async def block_user(
    body: BlockIn, claims: TokenClaims, db: Db, settings: AppSettings, response: Response
) -> dict[str, Any]:
    """Blocks a user the caller is in contact with → {user_id, name, created_at}."""
    user_id = body.blocked_user_id(claims.user_id)
    block, created = await service.block(db, claims, user_id, settings.block_rate_per_hour)
    response.status_code = 201 if created else 200
    return block


@router.get("/blocks", response_model=BlockListOut, responses=AUTH_ERRORS)
async def list_blocks(claims: TokenClaims, db: Db) -> dict[str, Any]:
    """The users the caller blocks, newest first."""
    return {"blocks": await db.run(service.list_blocks, claims)}


@router.delete("/blocks/{user_id}", status_code=204, responses=AUTH_ERRORS | TOO_MANY_BLOCKS)
async def unblock_user(user_id: PathId, claims: TokenClaims, db: Db, settings: AppSettings) -> Response:
    """Unblocks; unblocking a user who is not blocked is no error."""
    await db.run(service.unblock_user, claims, user_id, settings.block_rate_per_hour)
    return Response(status_code=204)


# ---------------------------------------------------------------------------- conversations


@router.get(
    "/conversations",
    response_model=ConversationPageOut,
    responses=AUTH_ERRORS | {422: {"description": "Invalid limit or cursor"}},
)
async def list_conversations(
    claims: TokenClaims,
    db: Db,
    limit: Limit = 20,
    before: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
) -> dict[str, Any]:
    """The caller's conversations, latest activity first (last message, else creation)."""
    return await db.run(service.list_conversations, claims, limit, before)


@router.post(
    "/conversations",
    response_model=ConversationOut,
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
    other_user_id = body.other_user_id(claims.user_id)
    limit = settings.conversation_create_rate_per_hour
    conversation, created = await service.start(db, claims, other_user_id, limit)
    response.status_code = 201 if created else 200
    return conversation


@router.get(
    "/conversations/{conversation_id}", response_model=ConversationOut, responses=AUTH_ERRORS | NOT_FOUND
)
async def get_conversation(
    conversation_id: ConversationIdPath, claims: TokenClaims, db: Db
) -> dict[str, Any]:
    return await db.run(service.get_conversation, claims, conversation_id)


# ---------------------------------------------------------------------------- read markers


@router.post(
    "/conversations/{conversation_id}/read",
    response_model=ReadMarkerOut,
    responses=AUTH_ERRORS
    | NOT_FOUND
    | {422: {"description": "Invalid body, or the message is not one of this conversation"}},
)
async def mark_read(
    conversation_id: ConversationIdPath, body: ReadIn, claims: TokenClaims, db: Db
) -> dict[str, Any]:
    """Moves the caller's read marker forward to the message; an older message leaves it as is."""
    return await db.run(service.mark_read, claims, conversation_id, body.last_read_message_id)


@router.get(
    "/conversations/{conversation_id}/read-status",
    response_model=ReadStatusOut,
    responses=AUTH_ERRORS | NOT_FOUND,
)
async def read_status(conversation_id: ConversationIdPath, claims: TokenClaims, db: Db) -> dict[str, Any]:
    """Each participant's read marker."""
    return await db.run(service.read_status, claims, conversation_id)
