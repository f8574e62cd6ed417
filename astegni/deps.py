"""Dependencies that handlers declare by type: `db: Db`, `user: CurrentUser`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from astegni.db import Database
from astegni.errors import Forbidden, Unauthorized
from astegni.principal import Principal, load_principal
from astegni.security import Claims, decode_token
from astegni.settings import Settings

_bearer = OAuth2PasswordBearer(tokenUrl="/api/login", auto_error=False)


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


Db = Annotated[Database, Depends(get_db)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]


async def current_claims(
    request: Request, settings: AppSettings, token: Annotated[str | None, Depends(_bearer)]
) -> Claims:
    """The verified access token. No database work: handlers on hot paths load the caller
    inside their own transaction (load_principal) to save a round trip."""
    if not token:
        raise Unauthorized("Not authenticated")
    claims = decode_token(settings, token)
    claimed_user = request.query_params.get("user_id")
    # Older clients send user_id in the query string; it may only name the caller.
    if claimed_user is not None and claimed_user != str(claims.user_id):
        raise Forbidden("user_id does not match the authenticated user")
    return claims


TokenClaims = Annotated[Claims, Depends(current_claims)]


async def current_user(claims: TokenClaims, db: Db) -> Principal:
    return await db.run(load_principal, claims)


CurrentUser = Annotated[Principal, Depends(current_user)]
