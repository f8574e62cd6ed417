"""Parents' children (linked student accounts) and the student's own profile."""

from __future__ import annotations

from typing import Any

import psycopg2.errors
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from astegni.accounts.principal import load_principal
from astegni.accounts.router import AccountIn
from astegni.core import rate_limits
from astegni.core.database import constraint_name
from astegni.core.deps import UNAUTHORIZED, AppSettings, Db, TokenClaims
from astegni.core.errors import Conflict, Forbidden
from astegni.core.models import Text
from astegni.core.queries import Queries, fetch_all, fetch_one
from astegni.core.security import Claims, hash_password

router = APIRouter(prefix="/api", tags=["families"])
queries = Queries("accounts/families.sql")

NOT_A_PARENT = {403: {"description": "The caller does not hold the parent role"}}


class ChildIn(AccountIn):
    """A new student account, linked to the calling parent; the child logs in with these."""

    school: Text(200) | None = None


def _parent_id(cur, claims: Claims) -> int:
    parent_id = load_principal(cur, claims).profile_id("parent")
    if parent_id is None:
        raise Forbidden("Only parents have children here", code="not_a_parent")
    return parent_id


def _children(cur, claims: Claims) -> list[dict[str, Any]]:
    return fetch_all(cur, queries.children, {"parent_id": _parent_id(cur, claims)})


@router.get("/parent/children", responses={**UNAUTHORIZED, **NOT_A_PARENT})
async def children(claims: TokenClaims, db: Db) -> dict[str, Any]:
    """The caller's children; `id` is the student_profiles.id a session request names."""
    return {"children": await db.run(_children, claims)}


def _create_child(cur, claims: Claims, fields: dict[str, Any]) -> dict[str, Any]:
    fields = fields | {"parent_id": _parent_id(cur, claims)}
    try:
        return fetch_one(cur, queries.create_child, fields)
    except psycopg2.errors.UniqueViolation as exc:
        if constraint_name(exc) == "users_email_lower_key":
            raise Conflict("Email already registered", code="email_taken") from None
        raise


@router.post(
    "/parent/children",
    status_code=201,
    responses={
        **UNAUTHORIZED,
        **NOT_A_PARENT,
        409: {"description": "Email already registered"},
        429: {"description": "Too many children created in the last hour; see Retry-After"},
    },
)
async def add_child(body: ChildIn, claims: TokenClaims, db: Db, settings: AppSettings) -> dict[str, Any]:
    """Create a student account for a child and link it to the caller."""
    # Counted per caller in a transaction of its own, before the password is hashed: a refused
    # attempt (a taken email) counts too, which bounds how fast anyone can probe for emails here.
    await db.run(rate_limits.hit, "child_create", claims.user_id, settings.child_create_rate_per_hour, 3600)
    password_hash = await run_in_threadpool(hash_password, settings, body.password)
    fields = body.model_dump(exclude={"password"}) | {"password_hash": password_hash}
    return await db.run(_create_child, claims, fields)


def _student_profile(cur, claims: Claims) -> dict[str, Any]:
    student_id = load_principal(cur, claims).profile_id("student")
    if student_id is None:
        raise Forbidden("You do not have a student profile", code="no_student_profile")
    return fetch_one(cur, queries.student_profile, {"student_id": student_id})


@router.get(
    "/student/profile",
    responses={**UNAUTHORIZED, 403: {"description": "The caller does not hold the student role"}},
)
async def student_profile(claims: TokenClaims, db: Db) -> dict[str, Any]:
    """The caller's student profile, with the parents linked to it."""
    return await db.run(_student_profile, claims)
