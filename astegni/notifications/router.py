"""GET/PUT /api/me/notifications: which kinds of email the caller gets."""

from __future__ import annotations

from fastapi import APIRouter

from astegni.core.deps import UNAUTHORIZED, Db, TokenClaims
from astegni.notifications import service
from astegni.notifications.models import PreferencesIn, PreferencesOut

router = APIRouter(prefix="/api/me", tags=["notifications"])


@router.get("/notifications", response_model=PreferencesOut, responses=UNAUTHORIZED)
async def get_notifications(claims: TokenClaims, db: Db) -> dict[str, bool]:
    """Each kind of email and whether the caller gets it."""
    return await db.run(service.preferences, claims)


@router.put(
    "/notifications",
    response_model=PreferencesOut,
    responses=UNAUTHORIZED | {422: {"description": "An unknown kind, or a value that is not true or false"}},
)
async def put_notifications(body: PreferencesIn, claims: TokenClaims, db: Db) -> dict[str, bool]:  # type: ignore[valid-type]
    """Turns the kinds named on (true) or off (false); kinds not named keep their setting.
    Returns every kind's setting."""
    return await db.run(service.set_preferences, claims, body.model_dump(exclude_none=True))
