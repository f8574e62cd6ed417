"""Register, login, refresh, me, my-roles, switch-role."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import psycopg2.errors
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import EmailStr, Field, ValidationError, field_validator

from astegni.db import constraint_name
from astegni.deps import AppSettings, CurrentUser, Db, TokenClaims
from astegni.errors import Conflict, Forbidden, TooManyRequests, Unauthorized, Unprocessable
from astegni.models import ApiModel, Name, Password, Text
from astegni.principal import ROLES, Principal, load_principal, principal_from_row, queries
from astegni.queries import execute, fetch_one
from astegni.security import Claims, decode_token, dummy_verify, hash_password, issue_tokens, verify_password
from astegni.settings import Settings

router = APIRouter(prefix="/api", tags=["accounts"])

Role = Literal["student", "parent", "tutor"]
Locale = Literal["en", "am"]
BAD_LOGIN = "Incorrect email or password"


class AccountIn(ApiModel):
    """The fields of a new account: a registration, or a child a parent creates."""

    email: EmailStr
    password: Password
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
    password: Annotated[str, Field(min_length=1, max_length=128)]


class RefreshIn(ApiModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)]


class SwitchRoleIn(ApiModel):
    role: Role


def login_body(settings: Settings, user: Principal) -> dict[str, Any]:
    return {**issue_tokens(settings, user.id, user.active_role), "user": user.as_json()}


def create_user(cur, fields: dict[str, Any]) -> Principal:
    try:
        row = fetch_one(cur, queries.create_user, fields)
    except psycopg2.errors.UniqueViolation as exc:
        if constraint_name(exc) == "users_email_lower_key":
            raise Conflict("Email already registered", code="email_taken") from None
        raise
    return principal_from_row(row)


async def register_user(db, settings: Settings, body: RegisterIn, **extra: Any) -> Principal:
    """Hash off the event loop, then insert the user and a profile per role."""
    password_hash = await run_in_threadpool(hash_password, settings, body.password)
    fields = body.model_dump(exclude={"password"}) | {"password_hash": password_hash} | extra
    return await db.run(create_user, fields)


UNAUTHORIZED = {401: {"description": "Missing, invalid or expired token, or user deactivated"}}


@router.post(
    "/register",
    status_code=201,
    responses={409: {"description": "Email already registered"}, 422: {"description": "Invalid body"}},
)
async def register(body: RegisterIn, db: Db, settings: AppSettings) -> dict[str, Any]:
    return login_body(settings, await register_user(db, settings, body))


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


def _record_failure(cur, email: str, settings: Settings) -> None:
    row = fetch_one(
        cur,
        queries.record_login_failure,
        {"email": email, "window_seconds": settings.login_window_seconds},
    )
    if row["failures"] >= settings.login_max_failures:
        execute(cur, queries.lock_login, {"email": email, "lockout_seconds": settings.login_lockout_seconds})


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
        429: {"description": "Too many failed logins for this email; see Retry-After"},
    },
)
async def login(request: Request, db: Db, settings: AppSettings) -> dict[str, Any]:
    creds = await _login_credentials(request)
    candidate = await db.run(fetch_one, queries.login_candidate, {"email": creds.email})
    if candidate["locked_seconds"]:
        raise TooManyRequests(
            "Too many failed logins; try again later", candidate["locked_seconds"], code="login_locked"
        )
    if candidate["id"] is None:
        await run_in_threadpool(dummy_verify, settings)
        ok = False
    else:
        ok = await run_in_threadpool(verify_password, settings, candidate["password_hash"], creds.password)
    if not ok or not candidate["is_active"]:
        await db.run(_record_failure, creds.email, settings)
        raise Unauthorized(BAD_LOGIN, code="bad_credentials")
    user = await db.run(_logged_in, candidate["id"], creds.email)
    return login_body(settings, user)


def _logged_in(cur, user_id: int, email: str) -> Principal:
    execute(cur, queries.clear_login_failures, {"email": email})
    return load_principal(cur, Claims(user_id=user_id, role=None, token_type="access"))


@router.post("/refresh", responses=UNAUTHORIZED)
async def refresh(body: RefreshIn, db: Db, settings: AppSettings) -> dict[str, Any]:
    claims = decode_token(settings, body.refresh_token, expected_type="refresh")
    user = await db.run(load_principal, claims)
    return login_body(settings, user)


@router.get("/me", responses=UNAUTHORIZED)
async def me(user: CurrentUser) -> dict[str, Any]:
    return user.as_json()


@router.get("/my-roles", responses=UNAUTHORIZED)
async def my_roles(user: CurrentUser) -> dict[str, Any]:
    return {"user_roles": user.roles, "active_role": user.active_role}


def _switch_role(cur, claims: Claims, role: str) -> Principal:
    user = load_principal(cur, claims)
    if role not in user.roles:
        raise Forbidden(f"You do not have the {role} role", code="role_not_held")
    if fetch_one(cur, queries.switch_role, {"user_id": user.id, "role": role}) is None:
        raise Unauthorized("User not found or deactivated")
    return user


@router.post("/switch-role", responses={**UNAUTHORIZED, 403: {"description": "Role not held"}})
async def switch_role(
    body: SwitchRoleIn, claims: TokenClaims, db: Db, settings: AppSettings
) -> dict[str, Any]:
    user = await db.run(_switch_role, claims, body.role)
    tokens = issue_tokens(settings, user.id, body.role)
    return {"active_role": body.role, "user_roles": user.roles, **tokens}


__all__ = ["ROLES", "register_user", "router"]
