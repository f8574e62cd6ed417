"""Real-time events leave through PostgreSQL NOTIFY, issued inside the writing transaction.

PostgreSQL delivers a NOTIFY only when its transaction commits, so an event can never announce a
write that was rolled back; every server process LISTENs on CHANNEL and pushes the event to its
own WebSockets (astegni/realtime/service.py). The payload is built by realtime_publish() of astegni/chat/functions.sql,
which the session-request functions call too: one envelope and one recipient rule (a user who
blocks the actor gets nothing the actor caused).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

CHANNEL = "astegni_events"  # also named in realtime_publish(), astegni/chat/functions.sql


def _json_default(value: Any) -> Any:
    # As the API's own responses render them: timestamps ISO 8601, money a JSON number.
    if isinstance(value, Decimal):
        return float(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def publish(
    cur: Any, event_type: str, user_ids: Iterable[int], data: dict[str, Any], *, actor: int | None = None
) -> None:
    """Queue an event for every open socket of user_ids, less those who block `actor` (the user
    whose write caused it; None: the system); it leaves when the transaction commits."""
    cur.execute(
        "SELECT realtime_publish(%s, %s::integer[], %s::jsonb, %s::integer)",
        (
            event_type,
            sorted(set(user_ids)),
            json.dumps(data, default=_json_default, separators=(",", ":")),
            actor,
        ),
    )
