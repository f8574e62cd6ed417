"""PUT /api/me: the caller changes their own settings (today: the language)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from astegni.accounts.principal import queries
from astegni.core.deps import UNAUTHORIZED, CurrentUser, Db
from astegni.core.errors import Unauthorized
from astegni.core.models import ApiModel
from astegni.core.queries import fetch_one

router = APIRouter(prefix="/api", tags=["accounts"])


class MeIn(ApiModel):
    locale: Literal["en", "am"]


def _set_locale(cur: Any, user_id: int, locale: str) -> None:
    if fetch_one(cur, queries.set_locale, {"user_id": user_id, "locale": locale}) is None:
        raise Unauthorized("User not found or deactivated")


@router.put("/me", responses={**UNAUTHORIZED, 422: {"description": "Unknown locale"}})
async def update_me(body: MeIn, user: CurrentUser, db: Db) -> dict[str, Any]:
    await db.run(_set_locale, user.id, body.locale)
    return user.as_json() | {"locale": body.locale}
