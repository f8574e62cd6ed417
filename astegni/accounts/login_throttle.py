"""Login throttling: every attempt is counted before its password is checked, so guesses sent at
once cannot all reach the hash.

Two counters per attempt (login_attempt, astegni/accounts/functions.sql, one statement each): the
email with the client address (LOGIN_MAX_FAILURES per LOGIN_WINDOW_SECONDS), and the email alone
(LOGIN_ACCOUNT_MAX_FAILURES, higher), so that a stranger guessing from a few addresses locks out
only those addresses, not the account's owner. The account-wide count is asked only for attempts
the address count let through: guesses refused at their address do not add up against the
owner. An email and address that logged in successfully within LOGIN_TRUST_DAYS are not held
to the account-wide ceiling at all, so the owner's usual address stays open however many
strangers guess. A lockout lasts LOGIN_LOCKOUT_SECONDS and answers 429 with Retry-After.
"""

from __future__ import annotations

from typing import Any

from astegni.core.errors import TooManyRequests
from astegni.core.queries import Queries, execute, fetch_one
from astegni.core.settings import Settings

queries = Queries("accounts/login_throttle.sql")


def attempt(cur: Any, settings: Settings, email: str, client: str) -> None:
    """Count one attempt; 429 when the address or the account is locked out. Its transaction
    must commit before the password is checked."""
    _count(cur, queries.la_attempt, settings, email, client, settings.login_max_failures)
    _count(cur, queries.la_attempt_account, settings, email, client, settings.login_account_max_failures)


def _count(cur: Any, query: Any, settings: Settings, email: str, client: str, limit: int) -> None:
    if limit <= 0:
        return
    row = fetch_one(
        cur,
        query,
        {
            "email": email,
            "client": client,
            "limit": limit,
            "window_seconds": settings.login_window_seconds,
            "lockout_seconds": settings.login_lockout_seconds,
        },
    )
    if row["retry_after"]:
        raise TooManyRequests(
            "Too many failed logins; try again later", row["retry_after"], code="login_locked"
        )


def succeeded(cur: Any, settings: Settings, email: str, client: str) -> None:
    params = {"email": email, "client": client, "trust_days": settings.login_trust_days}
    execute(cur, queries.la_succeeded, params)


def purge(cur: Any, window_seconds: int) -> None:
    """Drop counters whose window and lockout have ended (the expiry sweep calls this)."""
    execute(cur, queries.la_purge, {"window_seconds": window_seconds})
    execute(cur, queries.la_purge_trusted)
