"""Register, login, refresh, logout, me, my-roles, switch-role."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import psycopg2.errors
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import EmailStr, Field, ValidationError, field_validator

from astegni.accounts import login_throttle, refresh
from astegni.accounts.passwords import GivenPassword, NewPassword
from astegni.accounts.principal import ROLES, Principal, load_principal, principal_from_row, queries
from astegni.core import rate_limits
from astegni.core.database import constraint_name
from astegni.core.deps import UNAUTHORIZED, AppSettings, CurrentUser, Db, TokenClaims
from astegni.core.errors import Conflict, Forbidden, Unauthorized, Unprocessable
from astegni.core.models import ApiModel, Name, Text
from astegni.core.queries import fetch_one
from astegni.core.security import (
    Claims,
    decode_token,
    dummy_verify,
    hash_password,
    issue_tokens,
    verify_password,
)
from astegni.core.settings import Settings

router = APIRouter(prefix="/api", tags=["accounts"])

Role = Literal["student", "parent", "tutor"]
Locale = Literal["en", "am"]
BAD_LOGIN = "Incorrect email or password"


class AccountIn(ApiModel):
    """The fields of a new account: a registration, or a child a parent creates."""

    email: EmailStr
    password: NewPassword
    first_name: Name
    father_name: Name
    grandfather_name: Text(100) | None = None
    phone: Text(30) | None = None
    grade_level: Text(50) | None = None
    locale: Locale | None = None


class RegisterIn(AccountIn):
    roles: Annotated[list[Role], Field(min_length=1, max_length=3)]

    @field_validator("roles")
    @classmethod
    def _distinct(cls, roles: list[str]) -> list[str]:
        return list(dict.fromkeys(roles))


class LoginIn(ApiModel):
    email: Annotated[str, Field(min_length=1, max_length=254)]
    password: GivenPassword


class RefreshIn(ApiModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)]


class SwitchRoleIn(ApiModel):
    role: Role


def no_store(response: Response) -> None:
    """Responses carrying tokens are never kept by a browser or a proxy."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


def _started(cur, settings: Settings, user: Principal) -> dict[str, Any]:
    """The login body of a new login of `user`."""
    return {**refresh.start(cur, settings, user), "user": user.as_json()}


def create_user(cur, fields: dict[str, Any]) -> Principal:
    try:
        row = fetch_one(cur, queries.create_user, fields)
    except psycopg2.errors.UniqueViolation as exc:
        if constraint_name(exc) == "users_email_lower_key":
            raise Conflict("Email already registered", code="email_taken") from None
        raise
    return principal_from_row(row)


def _registered(cur, settings: Settings, fields: dict[str, Any]) -> dict[str, Any]:
    return _started(cur, settings, create_user(cur, fields))


@router.post(
    "/register",
    status_code=201,
    responses={
        409: {"description": "Email already registered"},
        422: {"description": "Invalid body"},
        429: {"description": "Too many registrations from this address; see Retry-After"},
    },
)
async def register(
    request: Request, body: RegisterIn, response: Response, db: Db, settings: AppSettings
) -> dict[str, Any]:
    no_store(response)
    # Per client address (as the server sees it: uvicorn's proxy-headers setting decides whether a
    # proxy's X-Forwarded-For counts), in a transaction of its own before the password is hashed,
    # so that attempts that fail count too.
    address = rate_limits.client_key(request)
    await db.run(rate_limits.hit, "register", address, settings.register_rate_per_hour, 3600)
    password_hash = await run_in_threadpool(hash_password, settings, body.password)
    fields = body.model_dump(exclude={"password"}) | {"password_hash": password_hash}
    return await db.run(_registered, settings, fields)


async def _login_credentials(request: Request) -> LoginIn:
    """JSON {email, password} or the OAuth2 password form (username = email)."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            data = {"email": form.get("username") or form.get("email"), "password": form.get("password")}
        else:
            data = json.loads(await request.body() or b"null")
        return LoginIn.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable(
            exc.errors(include_url=False, include_context=False, include_input=False)
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise Unprocessable("Body must be JSON {email, password} or an OAuth2 password form") from None


@router.post(
    "/login",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": LoginIn.model_json_schema()},
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["username", "password"],
                        "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
                    }
                },
            },
        }
    },
    responses={
        401: {"description": "Wrong email or password"},
        422: {"description": "Invalid body"},
        429: {"description": "Too many login attempts for this email (from this address); see Retry-After"},
    },
)
async def login(request: Request, response: Response, db: Db, settings: AppSettings) -> dict[str, Any]:
    no_store(response)
    creds = await _login_credentials(request)
    client = rate_limits.client_key(request)
    candidate = await db.run(_candidate, settings, creds.email, client)
    if candidate["id"] is None:
        await run_in_threadpool(dummy_verify, settings)
        ok = False
    else:
        ok = await run_in_threadpool(verify_password, settings, candidate["password_hash"], creds.password)
    if not ok or not candidate["is_active"]:
        raise Unauthorized(BAD_LOGIN, code="bad_credentials")
    return await db.run(_logged_in, settings, candidate["id"], creds.email, client)


def _candidate(cur, settings: Settings, email: str, client: str) -> dict[str, Any]:
    """The user behind a login attempt, once the attempt is counted: the count commits before the
    hash is touched, so parallel guesses cannot outrun it."""
    login_throttle.attempt(cur, settings, email, client)
    return fetch_one(cur, queries.login_candidate, {"email": email})


def _logged_in(cur, settings: Settings, user_id: int, email: str, client: str) -> dict[str, Any]:
    login_throttle.succeeded(cur, settings, email, client)
    user = load_principal(cur, Claims(user_id=user_id, role=None, token_type="access"))
    return _started(cur, settings, user)


@router.post("/refresh", responses=UNAUTHORIZED)
async def refresh_tokens(
    body: RefreshIn, response: Response, db: Db, settings: AppSettings
) -> dict[str, Any]:
    """Spend the refresh token for a new pair. A token spent before revokes its whole login."""
    no_store(response)
    claims = decode_token(settings, body.refresh_token, expected_type="refresh")
    tokens = await db.run(_refreshed, settings, claims)
    if tokens is None:  # the revocation is committed; now refuse
        raise Unauthorized(refresh.SPENT)
    return tokens


def _refreshed(cur, settings: Settings, claims: Claims) -> dict[str, Any] | None:
    spent = refresh.rotate(cur, settings, claims)
    if spent is None:
        return None
    family, jti = spent
    user = load_principal(cur, claims)
    tokens = issue_tokens(settings, user.id, user.active_role, family, jti)
    return {**tokens, "user": user.as_json()}


@router.post("/logout", status_code=204, responses=UNAUTHORIZED)
async def logout(body: RefreshIn, db: Db, settings: AppSettings) -> Response:
    """Revoke the login of this refresh token: it and every token of the same login stop
    refreshing. (Access tokens already issued live out their short lifetime.)"""
    claims = decode_token(settings, body.refresh_token, expected_type="refresh")
    await db.run(refresh.revoke, claims)
    return Response(status_code=204)


@router.get("/me", responses=UNAUTHORIZED)
async def me(user: CurrentUser) -> dict[str, Any]:
    return user.as_json()


@router.get("/my-roles", responses=UNAUTHORIZED)
async def my_roles(user: CurrentUser) -> dict[str, Any]:
    return {"user_roles": user.roles, "active_role": user.active_role}


def _switch_role(cur, settings: Settings, claims: Claims, role: str) -> dict[str, Any]:
    user = load_principal(cur, claims)
    if role not in user.roles:
        raise Forbidden(f"You do not have the {role} role", code="role_not_held")
    if fetch_one(cur, queries.switch_role, {"user_id": user.id, "role": role}) is None:
        raise Unauthorized("User not found or deactivated")
    tokens = refresh.reissue(cur, settings, claims, user, role)
    return {"active_role": role, "user_roles": user.roles, **tokens}


@router.post("/switch-role", responses={**UNAUTHORIZED, 403: {"description": "Role not held"}})
async def switch_role(
    body: SwitchRoleIn, response: Response, claims: TokenClaims, db: Db, settings: AppSettings
) -> dict[str, Any]:
    no_store(response)
    return await db.run(_switch_role, settings, claims, body.role)


__all__ = ["ROLES", "router"]
