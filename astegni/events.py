"""Real-time events leave through PostgreSQL NOTIFY, issued inside the writing transaction.

PostgreSQL delivers a NOTIFY only when its transaction commits, so an event can never announce a
write that was rolled back; every server process LISTENs on CHANNEL and pushes the event to its
own WebSockets (astegni/realtime.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

CHANNEL = "astegni_events"
# NOTIFY payloads must stay under 8000 bytes; larger events are stored and sent by reference.
MAX_INLINE_PAYLOAD = 7000


def _json_default(value: Any) -> Any:
    # As the API's own responses render them: timestamps ISO 8601, money a JSON number.
    if isinstance(value, Decimal):
        return float(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def publish(cur: Any, event_type: str, user_ids: Iterable[int], data: dict[str, Any]) -> None:
    """Queue an event for every open socket of user_ids; it leaves when the transaction commits."""
    payload = json.dumps(
        {"type": event_type, "user_ids": sorted(set(user_ids)), "data": data},
        default=_json_default,
        separators=(",", ":"),
    )
    if len(payload.encode()) > MAX_INLINE_PAYLOAD:
        cur.execute("INSERT INTO realtime_events (payload) VALUES (%s) RETURNING id", (payload,))
        payload = json.dumps({"ref": cur.fetchone()["id"]})
    cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
