"""Dependencies that handlers declare by type: `db: Db`, `user: CurrentUser`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.datastructures import QueryParams
from starlette.requests import HTTPConnection

from astegni.accounts.principal import Principal, load_principal
from astegni.core.database import Database
from astegni.core.errors import Forbidden, ServiceUnavailable, Unauthorized
from astegni.core.models import INT_MAX
from astegni.core.security import Claims, decode_token
from astegni.core.settings import Settings

_bearer = OAuth2PasswordBearer(tokenUrl="/api/login", auto_error=False)


# These are `async def` although they do not await: FastAPI runs a sync dependency on the
# threadpool, a hop that cost a third of the create endpoint's throughput (measured with make bench).
async def get_db(conn: HTTPConnection) -> Database:
    # Until the schema is applied at start-up, queries would fail on missing tables (a 500).
    if not getattr(conn.app.state, "schema_ready", True):
        raise ServiceUnavailable("Starting up, try again", retry_after=1)
    return conn.app.state.db


async def get_app_settings(conn: HTTPConnection) -> Settings:
    return conn.app.state.settings


Db = Annotated[Database, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]
PathId = Annotated[int, Path(ge=1, le=INT_MAX)]

# The OpenAPI description of the answer every authenticated route may give.
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, invalid or expired token, or a deactivated user"},
}


async def current_claims(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> Claims:
    """The verified access token. No database work: handlers on hot paths load the caller
    inside their own transaction (load_principal) to save a round trip."""
    return verify_token(request, token)


def bearer_claims(request: Request) -> Claims:
    """What TokenClaims resolves to, for the route that reads its Authorization header itself
    (POST /api/session-requests says why)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return verify_token(request, token if scheme.lower() == "bearer" else None)


def verify_token(request: Request, token: str | None) -> Claims:
    if not token:
        raise Unauthorized("Not authenticated")
    claims = decode_token(request.app.state.settings, token)
    # Most requests have no query string, and parsing none saves ~1% of the create's CPU.
    if request.scope["query_string"] and names_another_user(request.query_params, claims.user_id):
        raise Forbidden("user_id does not match the authenticated user")
    return claims


def names_another_user(query_params: QueryParams, user_id: int) -> bool:
    """Older clients send user_id in the query string; it may only name the caller. Every value
    counts: a repeated parameter is read differently by different layers (first, last, all)."""
    return any(claimed != str(user_id) for claimed in query_params.getlist("user_id"))


TokenClaims = Annotated[Claims, Depends(current_claims)]


async def current_user(claims: TokenClaims, db: Db) -> Principal:
    return await db.run(load_principal, claims)


CurrentUser = Annotated[Principal, Depends(current_user)]
