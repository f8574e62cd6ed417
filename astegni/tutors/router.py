"""Tutor profiles as the public sees them, and a tutor's management of their own packages."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Annotated, Any, Literal

import psycopg2.errors
from fastapi import APIRouter
from pydantic import Field, ValidationError, field_validator, model_validator

from astegni.accounts.principal import Principal, load_principal
from astegni.core.deps import UNAUTHORIZED, Db, PathId, TokenClaims
from astegni.core.errors import Forbidden, NotFound, Unprocessable
from astegni.core.models import ApiModel, ClockTime, Text
from astegni.core.queries import Queries, fetch_all, fetch_one
from astegni.core.security import Claims

router = APIRouter(prefix="/api", tags=["tutors"])
queries = Queries("tutors/queries.sql")

Weekday = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ScheduleType = Literal["recurring", "specific_dates", "flexible"]
SessionFormat = Literal["online", "in_person", "hybrid"]
# ETB, at most two decimals, sent as a JSON number.
HourlyRate = Annotated[Decimal, Field(gt=0, le=100_000, decimal_places=2)]

NOT_A_TUTOR = {403: {"description": "The caller does not hold the tutor role"}}
NO_PACKAGE = {404: {"description": "No such package among the caller's"}}


class PackageIn(ApiModel):
    name: Text(200, 1)
    description: Text(2000) | None = None
    hourly_rate: HourlyRate
    schedule_type: ScheduleType = "recurring"
    schedule_days: Annotated[list[Weekday], Field(max_length=7)] = Field(default_factory=list)
    start_time: ClockTime | None = None
    end_time: ClockTime | None = None
    session_format: SessionFormat = "online"
    is_active: bool = True

    @field_validator("schedule_days")
    @classmethod
    def _distinct(cls, days: list[str]) -> list[str]:
        return list(dict.fromkeys(days))

    @model_validator(mode="after")
    def _times(self) -> PackageIn:
        if self.start_time and self.end_time and self.start_time >= self.end_time:
            raise ValueError("start_time must be before end_time")
        return self


class PackagePatch(ApiModel):
    """PUT body: the fields given replace the package's; the others keep their values."""

    name: Text(200, 1) | None = None
    description: Text(2000) | None = None
    hourly_rate: HourlyRate | None = None
    schedule_type: ScheduleType | None = None
    schedule_days: Annotated[list[Weekday], Field(max_length=7)] | None = None
    start_time: ClockTime | None = None
    end_time: ClockTime | None = None
    session_format: SessionFormat | None = None
    is_active: bool | None = None


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
    return {
        **{k: v for k, v in row.items() if k != "min_hourly_rate"},
        "min_hourly_rate": float(rate) if rate is not None else None,
    }


# ------------------------------------------------------------------ public view


def _view_tutor(cur, tutor_id: int) -> dict[str, Any]:
    row = fetch_one(cur, queries.tutor_public, {"tutor_id": tutor_id})
    if row is None:
        raise NotFound("Tutor not found", code="tutor_not_found")
    return tutor_json(row)


# Public: a marketplace shows its tutors to visitors, and the original Astegni page fetches these
# two without a token. A token sent anyway is ignored.
@router.get("/view-tutor/{tutor_id}", responses={404: {"description": "Tutor not found"}})
async def view_tutor(tutor_id: PathId, db: Db) -> dict[str, Any]:
    """A tutor's public profile; `id` is tutor_profiles.id. No token needed."""
    return await db.run(_view_tutor, tutor_id)


def _public_packages(cur, tutor_id: int) -> list[dict[str, Any]]:
    rows = fetch_all(cur, queries.public_packages, {"tutor_id": tutor_id})
    if not rows and fetch_one(cur, queries.tutor_public, {"tutor_id": tutor_id}) is None:
        raise NotFound("Tutor not found", code="tutor_not_found")
    return [package_json(row) for row in rows]


@router.get("/view-tutor/{tutor_id}/packages", responses={404: {"description": "Tutor not found"}})
async def view_tutor_packages(tutor_id: PathId, db: Db) -> dict[str, Any]:
    """The tutor's active packages (deactivated ones are not offered). No token needed."""
    return {"packages": await db.run(_public_packages, tutor_id)}


# ------------------------------------------------------------------ the tutor's own packages


def _tutor(cur, claims: Claims) -> tuple[Principal, int]:
    user = load_principal(cur, claims)
    tutor_id = user.profile_id("tutor")
    if tutor_id is None:
        raise Forbidden("Only tutors can manage packages", code="not_a_tutor")
    return user, tutor_id


def _own_packages(cur, claims: Claims) -> list[dict[str, Any]]:
    _, tutor_id = _tutor(cur, claims)
    return [package_json(row) for row in fetch_all(cur, queries.own_packages, {"tutor_id": tutor_id})]


@router.get("/tutor/packages", responses={**UNAUTHORIZED, **NOT_A_TUTOR})
async def my_packages(claims: TokenClaims, db: Db) -> dict[str, Any]:
    """All of the caller's packages, deactivated ones included (`is_active` tells them apart)."""
    return {"packages": await db.run(_own_packages, claims)}


def _create_package(cur, claims: Claims, fields: dict[str, Any]) -> dict[str, Any]:
    _, tutor_id = _tutor(cur, claims)
    return package_json(fetch_one(cur, queries.create_package, fields | {"tutor_id": tutor_id}))


@router.post("/tutor/packages", status_code=201, responses={**UNAUTHORIZED, **NOT_A_TUTOR})
async def create_package(body: PackageIn, claims: TokenClaims, db: Db) -> dict[str, Any]:
    return await db.run(_create_package, claims, body.model_dump())


def _update_package(cur, claims: Claims, package_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    _, tutor_id = _tutor(cur, claims)
    key = {"package_id": package_id, "tutor_id": tutor_id}
    current = fetch_one(cur, queries.own_package_for_update, key)
    if current is None:
        raise NotFound("Package not found", code="package_not_found")
    try:
        merged = PackageIn.model_validate({**current, **changes})
    except ValidationError as exc:
        raise Unprocessable(
            exc.errors(include_url=False, include_context=False, include_input=False)
        ) from None
    try:
        return package_json(fetch_one(cur, queries.update_package, merged.model_dump() | key))
    except psycopg2.errors.CheckViolation:  # the table's own checks, should a rule be added there
        raise Unprocessable("The package breaks a rule of the catalogue") from None


@router.put("/tutor/packages/{package_id}", responses={**UNAUTHORIZED, **NOT_A_TUTOR, **NO_PACKAGE})
async def update_package(
    package_id: PathId, body: PackagePatch, claims: TokenClaims, db: Db
) -> dict[str, Any]:
    """Change the given fields of one of the caller's packages (`is_active: true` reactivates)."""
    return await db.run(_update_package, claims, package_id, body.model_dump(exclude_unset=True))


def _deactivate_package(cur, claims: Claims, package_id: int) -> dict[str, Any]:
    _, tutor_id = _tutor(cur, claims)
    row = fetch_one(cur, queries.deactivate_package, {"package_id": package_id, "tutor_id": tutor_id})
    if row is None:
        raise NotFound("Package not found", code="package_not_found")
    return package_json(row)


@router.delete("/tutor/packages/{package_id}", responses={**UNAUTHORIZED, **NOT_A_TUTOR, **NO_PACKAGE})
async def delete_package(package_id: PathId, claims: TokenClaims, db: Db) -> dict[str, Any]:
    """Deactivate: the package leaves the public list, but requests and enrolments keep it."""
    package = await db.run(_deactivate_package, claims, package_id)
    return {"success": True, "message": "Package deactivated", "package": package}
