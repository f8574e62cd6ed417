"""Real-time events: queued during the writing transaction, sent after its commit.

A write queues its events on its connection (`publish`, or `queue` for events a SQL function
built); the transaction helper (astegni/core/database.py) sends them once the transaction has
committed, as one NOTIFY on CHANNEL from the connection that committed, and drops them on a
rollback. Every server process LISTENs on CHANNEL and pushes each event to its own WebSockets
(astegni/realtime/). The envelope is built by realtime_event() (astegni/chat/functions.sql): one
shape, one recipient rule (a user who blocks the actor gets nothing the actor caused), and events
over NOTIFY's size limit stored by reference.

Why after the commit rather than a NOTIFY inside the transaction: PostgreSQL holds one lock per
database from a notifying commit's start to its end, WAL flush included, so notifying commits
queue behind each other; make bench measured the create at half its rate that way. The NOTIFY
sent after the commit is its own transaction with synchronous_commit off (the notification queue
is not crash-safe anyway), which holds that lock for microseconds.

The price: a process that dies between a commit and its NOTIFY (microseconds) loses those
events. The write itself is committed, and clients catch up through
GET /api/chat/messages/{id}?after_id= whenever their socket reconnects.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import psycopg2

log = logging.getLogger("astegni.core.events")

CHANNEL = "astegni_events"

# One statement in autocommit: its own transaction, committed without waiting for the WAL flush.
SEND = (
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, payload)"
    " FROM unnest(%s::text[]) WITH ORDINALITY AS e(payload, n) ORDER BY n"
)


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
        "SELECT realtime_event(%s, %s::integer[], %s::jsonb, %s::integer) AS payload",
        (
            event_type,
            sorted(set(user_ids)),
            json.dumps(data, default=_json_default, separators=(",", ":")),
            actor,
        ),
    )
    queue(cur, [cur.fetchone()["payload"]])


def queue(cur: Any, payloads: Iterable[str] | None) -> None:
    """Queue events a SQL function built with realtime_event(), in their order."""
    if payloads:
        cur.connection.events.extend(payloads)


def send_after_commit(conn: Any) -> bool:
    """Send what conn's committed transaction queued; False when conn failed doing so (the
    events are lost, logged; the caller discards conn)."""
    if not conn.events:
        return True
    payloads, conn.events = conn.events, []
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(SEND, (CHANNEL, payloads))
        return True
    except psycopg2.Error as exc:
        log.warning("%d event(s) not sent: %s", len(payloads), str(exc).strip()[:200])
        return False
    finally:
        if not conn.closed:
            conn.autocommit = False
