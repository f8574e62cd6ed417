"""Which kinds of email a user gets.

Preferences are read when an email is sent, not when it is queued: the choice in force when it
leaves is the one the user made last (turning a kind off also stops what a mail-server outage
held back), and the create path writes its outbox row without looking anything up.
"""

from __future__ import annotations

from astegni.accounts.principal import load_principal
from astegni.core.queries import Queries, execute, fetch_all
from astegni.core.security import Claims
from astegni.notifications import KINDS

queries = Queries("notifications/queries.sql")


def preferences(cur, claims: Claims) -> dict[str, bool]:
    load_principal(cur, claims)
    off = {row["kind"] for row in fetch_all(cur, queries.email_preferences, {"user_id": claims.user_id})}
    return {kind: kind not in off for kind in KINDS}


def set_preferences(cur, claims: Claims, changes: dict[str, bool]) -> dict[str, bool]:
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
    return preferences(cur, claims)
