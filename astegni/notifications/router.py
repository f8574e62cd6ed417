"""GET/PUT /api/me/notifications: which kinds of email the caller gets.

Preferences are read when an email is sent, not when it is queued: the choice in force when it
leaves is the one the user made last (turning a kind off also stops what a mail-server outage
held back), and the create path writes its outbox row without looking anything up.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ConfigDict, create_model

from astegni.accounts.principal import load_principal
from astegni.core.deps import UNAUTHORIZED, Db, TokenClaims
from astegni.core.queries import execute, fetch_all
from astegni.core.security import Claims
from astegni.notifications import KINDS
from astegni.notifications.outbox import queries

router = APIRouter(prefix="/api/me", tags=["notifications"])


# {kind: true|false} for some kinds; an unknown kind or a value that is not a boolean is a 422.
PreferencesIn = create_model(
    "NotificationPreferencesIn",
    __config__=ConfigDict(extra="forbid", strict=True),
    **{kind: (bool | None, None) for kind in KINDS},
)
# Every kind, on or off.
PreferencesOut = create_model("NotificationPreferences", **{kind: (bool, ...) for kind in KINDS})


def _preferences(cur, claims: Claims) -> dict[str, bool]:
    load_principal(cur, claims)
    off = {row["kind"] for row in fetch_all(cur, queries.email_preferences, {"user_id": claims.user_id})}
    return {kind: kind not in off for kind in KINDS}


def _set_preferences(cur, claims: Claims, changes: dict[str, bool]) -> dict[str, bool]:
    load_principal(cur, claims)
    execute(
        cur,
        queries.email_set_preferences,
        {
            "user_id": claims.user_id,
            "on": [kind for kind, on in changes.items() if on],
            "off": [kind for kind, on in changes.items() if not on],
        },
    )
    return _preferences(cur, claims)


@router.get("/notifications", response_model=PreferencesOut, responses=UNAUTHORIZED)
async def get_notifications(claims: TokenClaims, db: Db) -> dict[str, bool]:
    """Each kind of email and whether the caller gets it."""
    return await db.run(_preferences, claims)


@router.put(
    "/notifications",
    response_model=PreferencesOut,
    responses=UNAUTHORIZED | {422: {"description": "An unknown kind, or a value that is not true or false"}},
)
async def put_notifications(body: PreferencesIn, claims: TokenClaims, db: Db) -> dict[str, bool]:  # type: ignore[valid-type]
    """Turns the kinds named on (true) or off (false); kinds not named keep their setting.
    Returns every kind's setting."""
    return await db.run(_set_preferences, claims, body.model_dump(exclude_none=True))
