"""The authenticated caller, as the database holds it at the moment of the request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from astegni.core.errors import Forbidden, Unauthorized
from astegni.core.queries import Queries, fetch_one
from astegni.core.security import Claims

queries = Queries("accounts/queries.sql")
ROLES = ("student", "parent", "tutor")


@dataclass(frozen=True)
class Principal:
    id: int
    email: str
    first_name: str
    father_name: str
    roles: list[str]
    active_role: str
    role_ids: dict[str, int]
    locale: str = "en"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.father_name}"

    def profile_id(self, role: str) -> int | None:
        return self.role_ids.get(role)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "father_name": self.father_name,
            "roles": self.roles,
            "active_role": self.active_role,
            "role_ids": self.role_ids,
            "locale": self.locale,
        }


def principal_from_row(row: dict[str, Any], active_role: str | None = None) -> Principal:
    role_ids = {role: row[f"{role}_id"] for role in ROLES if row.get(f"{role}_id") is not None}
    return Principal(
        id=row["id"],
        email=row["email"],
        first_name=row["first_name"],
        father_name=row["father_name"],
        roles=list(row["roles"]),
        active_role=active_role or row["active_role"],
        role_ids=role_ids,
        locale=row.get("locale", "en"),
    )


def load_principal(cur: Any, claims: Claims) -> Principal:
    """The token's user, if active; the token's role counts only while the user holds it, and
    role_ids name only the roles users.roles holds (user_principal in astegni/accounts/functions.sql,
    which the session-request create reads too)."""
    row = fetch_one(cur, queries.principal, {"user_id": claims.user_id, "role": claims.role})
    if row is None:
        raise Unauthorized("User not found or deactivated")
    if row["role"] is None:
        raise Unauthorized("Token role is not held by this user")
    return principal_from_row(row, row["role"])


def caller_profile_id(cur: Any, claims: Claims, role: str, refusal: str, code: str) -> int:
    """The id of the caller's `role` profile; 403 (`refusal`, `code`) when the caller does not
    hold that role."""
    profile_id = load_principal(cur, claims).profile_id(role)
    if profile_id is None:
        raise Forbidden(refusal, code=code)
    return profile_id
