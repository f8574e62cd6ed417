"""The units of work of the tutor endpoints: a tutor's public profile and packages, and a tutor's
management of their own packages. Each runs in one transaction (Database.run)."""

from __future__ import annotations

from datetime import time
from typing import Any

import psycopg2.errors
from pydantic import ValidationError

from astegni.accounts.principal import caller_profile_id
from astegni.core.errors import NotFound, Unprocessable
from astegni.core.queries import Queries, fetch_all, fetch_one
from astegni.core.security import Claims
from astegni.tutors.models import PackageIn, PackagePatch

queries = Queries("tutors/queries.sql")


def _hhmm(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def package_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "tutor_id": row["tutor_id"],
        "name": row["name"],
        "description": row["description"],
        "hourly_rate": float(row["hourly_rate"]),
        "schedule_type": row["schedule_type"],
        "schedule_days": list(row["schedule_days"]),
        "start_time": _hhmm(row["start_time"]),
        "end_time": _hhmm(row["end_time"]),
        "session_format": row["session_format"],
        "is_active": row["is_active"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def tutor_json(row: dict[str, Any]) -> dict[str, Any]:
    rate = row["min_hourly_rate"]
    return row | {"min_hourly_rate": float(rate) if rate is not None else None}


# ------------------------------------------------------------------ public view


def view_tutor(cur: Any, tutor_id: int) -> dict[str, Any]:
    row = fetch_one(cur, queries.tutor_public, {"tutor_id": tutor_id})
    if row is None:
        raise NotFound("Tutor not found", code="tutor_not_found")
    return tutor_json(row)


def public_packages(cur: Any, tutor_id: int) -> dict[str, Any]:
    rows = fetch_all(cur, queries.public_packages, {"tutor_id": tutor_id})
    if not rows and fetch_one(cur, queries.tutor_public, {"tutor_id": tutor_id}) is None:
        raise NotFound("Tutor not found", code="tutor_not_found")
    return {"packages": [package_json(row) for row in rows]}


# ------------------------------------------------------------------ the tutor's own packages


def _tutor_id(cur: Any, claims: Claims) -> int:
    return caller_profile_id(cur, claims, "tutor", "Only tutors can manage packages", "not_a_tutor")


def own_packages(cur: Any, claims: Claims) -> dict[str, Any]:
    rows = fetch_all(cur, queries.own_packages, {"tutor_id": _tutor_id(cur, claims)})
    return {"packages": [package_json(row) for row in rows]}


def create_package(cur: Any, claims: Claims, body: PackageIn) -> dict[str, Any]:
    fields = body.model_dump() | {"tutor_id": _tutor_id(cur, claims)}
    return package_json(fetch_one(cur, queries.create_package, fields))


def update_package(cur: Any, claims: Claims, package_id: int, body: PackagePatch) -> dict[str, Any]:
    """The fields given replace the package's, and the whole package is checked again."""
    key = {"package_id": package_id, "tutor_id": _tutor_id(cur, claims)}
    current = fetch_one(cur, queries.own_package_for_update, key)
    if current is None:
        raise NotFound("Package not found", code="package_not_found")
    try:
        merged = PackageIn.model_validate({**current, **body.model_dump(exclude_unset=True)})
    except ValidationError as exc:
        raise Unprocessable(
            exc.errors(include_url=False, include_context=False, include_input=False)
        ) from None
    try:
        return package_json(fetch_one(cur, queries.update_package, merged.model_dump() | key))
    except psycopg2.errors.CheckViolation:  # the table's own checks, should a rule be added there
        raise Unprocessable("The package breaks a rule of the catalogue") from None


def deactivate_package(cur: Any, claims: Claims, package_id: int) -> dict[str, Any]:
    """Packages are never deleted: requests and enrolments keep pointing at them."""
    row = fetch_one(
        cur, queries.deactivate_package, {"package_id": package_id, "tutor_id": _tutor_id(cur, claims)}
    )
    if row is None:
        raise NotFound("Package not found", code="package_not_found")
    return {"success": True, "message": "Package deactivated", "package": package_json(row)}
