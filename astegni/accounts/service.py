"""The units of work of the accounts endpoints.

`fn(cur, ...)` runs in one transaction (Database.run). Register, login, refresh, logout and a
parent's new child are `async`: each spans transactions, because what must count (a rate-limit
hit, a login attempt, a revocation) commits before the slow password hash or the refusal that
follows it.
"""

from __future__ import annotations

from typing import Any

import psycopg2.errors
from fastapi.concurrency import run_in_threadpool

from astegni.accounts import login_throttle, refresh
from astegni.accounts.models import AccountIn, ChildIn, LoginIn, RegisterIn
from astegni.accounts.principal import Principal, caller_profile_id, load_principal, principal_from_row
from astegni.core import rate_limits
from astegni.core.database import Database, constraint_name
from astegni.core.errors import Conflict, Forbidden, Unauthorized
from astegni.core.queries import Queries, Query, fetch_all, fetch_one
from astegni.core.security import (
    Claims,
    decode_token,
    dummy_verify,
    hash_password,
    issue_tokens,
    verify_password,
)
from astegni.core.settings import Settings

queries = Queries("accounts/queries.sql")
BAD_LOGIN = "Incorrect email or password"
GONE = "User not found or deactivated"


# ------------------------------------------------------------------ new accounts


async def _account_fields(settings: Settings, body: AccountIn) -> dict[str, Any]:
    """The columns of a new account: the body, with its password hashed off the event loop."""
    password_hash = await run_in_threadpool(hash_password, settings, body.password)
    return body.model_dump(exclude={"password"}) | {"password_hash": password_hash}


def _insert_account(cur: Any, query: Query, fields: dict[str, Any]) -> dict[str, Any]:
    """Run `query`, which inserts a user: an email already registered (whatever its case) is a 409."""
    try:
        return fetch_one(cur, query, fields)
    except psycopg2.errors.UniqueViolation as exc:
        if constraint_name(exc) == "users_email_lower_key":
            raise Conflict("Email already registered", code="email_taken") from None
        raise


def _started(cur: Any, settings: Settings, user: Principal) -> dict[str, Any]:
    """The answer to a new login of `user`: its tokens and the user."""
    return {**refresh.start(cur, settings, user), "user": user.as_json()}


async def register(db: Database, settings: Settings, body: RegisterIn, address: str) -> dict[str, Any]:
    # Per client address (as the server sees it: uvicorn's proxy-headers setting decides whether a
    # proxy's X-Forwarded-For counts), in a transaction of its own before the password is hashed,
    # so that attempts that fail count too.
    await db.run(rate_limits.hit, "register", address, settings.register_rate_per_hour, 3600)
    fields = await _account_fields(settings, body)
    return await db.run(_registered, settings, fields)


def _registered(cur: Any, settings: Settings, fields: dict[str, Any]) -> dict[str, Any]:
    user = principal_from_row(_insert_account(cur, queries.create_user, fields))
    return _started(cur, settings, user)


# ------------------------------------------------------------------ login and tokens


async def login(db: Database, settings: Settings, creds: LoginIn, client: str) -> dict[str, Any]:
    candidate = await db.run(_candidate, settings, creds.email, client)
    if candidate["id"] is None:
        await run_in_threadpool(dummy_verify, settings)
        ok = False
    else:
        ok = await run_in_threadpool(verify_password, settings, candidate["password_hash"], creds.password)
    if not ok or not candidate["is_active"]:
        raise Unauthorized(BAD_LOGIN, code="bad_credentials")
    return await db.run(_logged_in, settings, candidate["id"], creds.email, client)


def _candidate(cur: Any, settings: Settings, email: str, client: str) -> dict[str, Any]:
    """The user behind a login attempt, once the attempt is counted: the count commits before the
    hash is touched, so parallel guesses cannot outrun it."""
    login_throttle.attempt(cur, settings, email, client)
    return fetch_one(cur, queries.login_candidate, {"email": email})


def _logged_in(cur: Any, settings: Settings, user_id: int, email: str, client: str) -> dict[str, Any]:
    login_throttle.succeeded(cur, settings, email, client)
    user = load_principal(cur, Claims(user_id=user_id, role=None, token_type="access"))
    return _started(cur, settings, user)


async def refresh_tokens(db: Database, settings: Settings, refresh_token: str) -> dict[str, Any]:
    """Spend the refresh token for a new pair. A token spent before revokes its whole login."""
    claims = decode_token(settings, refresh_token, expected_type="refresh")
    tokens = await db.run(_refreshed, settings, claims)
    if tokens is None:  # the revocation is committed; now refuse
        raise Unauthorized(refresh.SPENT)
    return tokens


def _refreshed(cur: Any, settings: Settings, claims: Claims) -> dict[str, Any] | None:
    spent = refresh.rotate(cur, settings, claims)
    if spent is None:
        return None
    family, jti = spent
    user = load_principal(cur, claims)
    tokens = issue_tokens(settings, user.id, user.active_role, family, jti)
    return {**tokens, "user": user.as_json()}


async def logout(db: Database, settings: Settings, refresh_token: str) -> None:
    """Revoke the login of this refresh token: it and every token of the same login stop
    refreshing. (Access tokens already issued live out their short lifetime.)"""
    claims = decode_token(settings, refresh_token, expected_type="refresh")
    await db.run(refresh.revoke, claims)


# ------------------------------------------------------------------ the caller's settings


def switch_role(cur: Any, settings: Settings, claims: Claims, role: str) -> dict[str, Any]:
    user = load_principal(cur, claims)
    if role not in user.roles:
        raise Forbidden(f"You do not have the {role} role", code="role_not_held")
    if fetch_one(cur, queries.switch_role, {"user_id": user.id, "role": role}) is None:
        raise Unauthorized(GONE)
    tokens = refresh.reissue(cur, settings, claims, user, role)
    return {"active_role": role, "user_roles": user.roles, **tokens}


def set_locale(cur: Any, user: Principal, locale: str) -> dict[str, Any]:
    if fetch_one(cur, queries.set_locale, {"user_id": user.id, "locale": locale}) is None:
        raise Unauthorized(GONE)
    return user.as_json() | {"locale": locale}


# ------------------------------------------------------------------ families


def _parent_id(cur: Any, claims: Claims) -> int:
    return caller_profile_id(cur, claims, "parent", "Only parents have children here", "not_a_parent")


def children(cur: Any, claims: Claims) -> dict[str, Any]:
    return {"children": fetch_all(cur, queries.children, {"parent_id": _parent_id(cur, claims)})}


async def add_child(db: Database, settings: Settings, claims: Claims, body: ChildIn) -> dict[str, Any]:
    # Counted per caller in a transaction of its own, before the password is hashed: a refused
    # attempt (a taken email) counts too, which bounds how fast anyone can probe for emails here.
    await db.run(rate_limits.hit, "child_create", claims.user_id, settings.child_create_rate_per_hour, 3600)
    fields = await _account_fields(settings, body)
    return await db.run(_create_child, claims, fields)


def _create_child(cur: Any, claims: Claims, fields: dict[str, Any]) -> dict[str, Any]:
    return _insert_account(cur, queries.create_child, fields | {"parent_id": _parent_id(cur, claims)})


def student_profile(cur: Any, claims: Claims) -> dict[str, Any]:
    refusal = "You do not have a student profile"
    student_id = caller_profile_id(cur, claims, "student", refusal, "no_student_profile")
    return fetch_one(cur, queries.student_profile, {"student_id": student_id})
