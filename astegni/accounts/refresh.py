"""Refresh tokens rotate: each works once, and presenting a spent one revokes its login.

A login starts a family (a refresh_families row) whose current_jti names the one refresh token
that may be exchanged. An exchange replaces current_jti in one conditional UPDATE, so of two
parallel exchanges of one token at most one succeeds. A token that no longer matches was spent
(or stolen and spent by someone else): the whole family is revoked, and the newest token with it.
The state is in PostgreSQL so that it holds across server processes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from astegni.accounts.principal import Principal
from astegni.core.errors import Unauthorized
from astegni.core.queries import Queries, execute, fetch_one
from astegni.core.security import Claims, issue_tokens, new_jti
from astegni.core.settings import Settings

queries = Queries("accounts/refresh.sql")
SPENT = "Refresh token already used or revoked; log in again"


def _lifetime(settings: Settings) -> int:
    return settings.refresh_token_days * 86400


def start(cur: Any, settings: Settings, user: Principal) -> dict[str, str]:
    """Tokens of a new login."""
    jti = new_jti()
    params = {"user_id": user.id, "jti": jti, "lifetime_seconds": _lifetime(settings)}
    family = fetch_one(cur, queries.rf_start, params)["id"]
    return issue_tokens(settings, user.id, user.active_role, family, jti)


def rotate(cur: Any, settings: Settings, claims: Claims) -> tuple[int, str] | None:
    """Spend refresh token `claims`: the family and the next jti, or None when it was already
    spent, in which case the family is revoked (commit before raising, or the revocation is lost)."""
    if claims.family is None or claims.jti is None:
        return None
    jti = new_jti()
    params = {
        "family": claims.family,
        "user_id": claims.user_id,
        "jti": claims.jti,
        "new_jti": jti,
        "lifetime_seconds": _lifetime(settings),
    }
    if fetch_one(cur, queries.rf_rotate, params) is None:
        revoke(cur, claims)
        return None
    return claims.family, jti


def reissue(cur: Any, settings: Settings, claims: Claims, user: Principal, role: str) -> dict[str, str]:
    """New tokens for `role` in the family of access token `claims` (switch-role); a token
    from before families existed, or of a revoked family, starts a new one."""
    if claims.family is not None:
        jti = new_jti()
        params = {
            "family": claims.family,
            "user_id": user.id,
            "new_jti": jti,
            "lifetime_seconds": _lifetime(settings),
        }
        if fetch_one(cur, queries.rf_reissue, params) is not None:
            return issue_tokens(settings, user.id, role, claims.family, jti)
        raise Unauthorized(SPENT)
    return start(cur, settings, replace(user, active_role=role))


def revoke(cur: Any, claims: Claims) -> None:
    if claims.family is not None:
        execute(cur, queries.rf_revoke, {"family": claims.family, "user_id": claims.user_id})


def purge(cur: Any) -> None:
    """Drop families whose last token has expired (the expiry sweep calls this)."""
    execute(cur, queries.rf_purge)
