"""Blocking another user. While A blocks B: B's messages and edits in a conversation with A are
refused, B cannot start a conversation with A (404, as for a missing user), and A gets no
real-time event that B caused (realtime_event in astegni/chat/functions.sql). History stays readable to both, and
A may still write to B."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import Field

from astegni.accounts.principal import load_principal
from astegni.chat.messages import AUTH_ERRORS
from astegni.core import rate_limits
from astegni.core.deps import AppSettings, Db, PathId, TokenClaims
from astegni.core.errors import BadRequest, NotFound
from astegni.core.models import INT_MAX, ApiModel
from astegni.core.queries import Queries, execute, fetch_all, fetch_one
from astegni.core.security import Claims

# Included by astegni.chat.router.router, under its /api/chat prefix.
router = APIRouter()
queries = Queries("chat/blocks.sql")

TOO_MANY = {429: {"description": "Too many blocks or unblocks; see Retry-After"}}


class BlockIn(ApiModel):
    user_id: Annotated[int, Field(gt=0, le=INT_MAX)]


@router.post(
    "/blocks",
    status_code=201,
    responses=AUTH_ERRORS
    | TOO_MANY
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
    if body.user_id == claims.user_id:
        raise BadRequest("You cannot block yourself")
    # Counted in a transaction of its own: a refused block (404) counts too, so that nobody can
    # probe user ids through it quickly.
    await db.run(_count, claims, settings.block_rate_per_hour)
    block, created = await db.run(_block, claims, body.user_id)
    response.status_code = 201 if created else 200
    return block


def _block(cur, claims: Claims, user_id: int) -> tuple[dict[str, Any], bool]:
    params = {"blocker_id": claims.user_id, "user_id": user_id}
    row = fetch_one(cur, queries.block_add, params)
    if row is None:
        raise NotFound("User not found")
    created = row.pop("created")
    if not created:  # blocked before, maybe by a concurrent call this statement could not see
        row = fetch_one(cur, queries.block_get, params) or row
    return row, created


@router.get("/blocks", responses=AUTH_ERRORS)
async def list_blocks(claims: TokenClaims, db: Db) -> dict[str, Any]:
    """The users the caller blocks, newest first."""
    return {"blocks": await db.run(_list, claims)}


def _list(cur, claims: Claims) -> list[dict[str, Any]]:
    load_principal(cur, claims)
    return fetch_all(cur, queries.block_list, {"blocker_id": claims.user_id})


@router.delete("/blocks/{user_id}", status_code=204, responses=AUTH_ERRORS | TOO_MANY)
async def unblock_user(user_id: PathId, claims: TokenClaims, db: Db, settings: AppSettings) -> Response:
    """Unblocks; unblocking a user who is not blocked is no error."""
    await db.run(_unblock, claims, user_id, settings.block_rate_per_hour)
    return Response(status_code=204)


def _unblock(cur, claims: Claims, user_id: int, rate_limit: int) -> None:
    _count(cur, claims, rate_limit)
    execute(cur, queries.block_remove, {"blocker_id": claims.user_id, "user_id": user_id})


def _count(cur, claims: Claims, rate_limit: int) -> None:
    load_principal(cur, claims)
    rate_limits.hit(cur, "chat_block", claims.user_id, rate_limit, window_seconds=3600)
