"""The tutor API: a tutor's public profile and packages, and a tutor's own packages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from astegni.core.deps import UNAUTHORIZED, Db, PathId, TokenClaims
from astegni.tutors import service
from astegni.tutors.models import (
    PackageDeactivatedOut,
    PackageIn,
    PackageOut,
    PackagePatch,
    PackagesOut,
    TutorOut,
)

router = APIRouter(prefix="/api", tags=["tutors"])

NO_TUTOR = {404: {"description": "Tutor not found"}}
NOT_A_TUTOR = {403: {"description": "The caller does not hold the tutor role"}}
NO_PACKAGE = {404: {"description": "No such package among the caller's"}}


# Public: a marketplace shows its tutors to visitors, and the original Astegni page fetches these
# two without a token. A token sent anyway is ignored.
@router.get("/view-tutor/{tutor_id}", response_model=TutorOut, responses=NO_TUTOR)
async def view_tutor(tutor_id: PathId, db: Db) -> dict[str, Any]:
    """A tutor's public profile; `id` is tutor_profiles.id. No token needed."""
    return await db.run(service.view_tutor, tutor_id)


@router.get("/view-tutor/{tutor_id}/packages", response_model=PackagesOut, responses=NO_TUTOR)
async def view_tutor_packages(tutor_id: PathId, db: Db) -> dict[str, Any]:
    """The tutor's active packages (deactivated ones are not offered). No token needed."""
    return await db.run(service.public_packages, tutor_id)


@router.get("/tutor/packages", response_model=PackagesOut, responses={**UNAUTHORIZED, **NOT_A_TUTOR})
async def my_packages(claims: TokenClaims, db: Db) -> dict[str, Any]:
    """All of the caller's packages, deactivated ones included (`is_active` tells them apart)."""
    return await db.run(service.own_packages, claims)


@router.post(
    "/tutor/packages",
    status_code=201,
    response_model=PackageOut,
    responses={**UNAUTHORIZED, **NOT_A_TUTOR},
)
async def create_package(body: PackageIn, claims: TokenClaims, db: Db) -> dict[str, Any]:
    return await db.run(service.create_package, claims, body)


@router.put(
    "/tutor/packages/{package_id}",
    response_model=PackageOut,
    responses={**UNAUTHORIZED, **NOT_A_TUTOR, **NO_PACKAGE},
)
async def update_package(
    package_id: PathId, body: PackagePatch, claims: TokenClaims, db: Db
) -> dict[str, Any]:
    """Change the given fields of one of the caller's packages (`is_active: true` reactivates)."""
    return await db.run(service.update_package, claims, package_id, body)


@router.delete(
    "/tutor/packages/{package_id}",
    response_model=PackageDeactivatedOut,
    responses={**UNAUTHORIZED, **NOT_A_TUTOR, **NO_PACKAGE},
)
async def delete_package(package_id: PathId, claims: TokenClaims, db: Db) -> dict[str, Any]:
    """Deactivate: the package leaves the public list, but requests and enrolments keep it."""
    return await db.run(service.deactivate_package, claims, package_id)
