"""Taking locks without queueing behind a long transaction.

An ALTER TABLE waiting for its lock blocks every reader that comes after it, so each statement
runs under a short lock_timeout; on timeout its transaction is rolled back, the script says who
holds the table and tries again a few times, then gives up with a clear message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg2.errors

T = TypeVar("T")


class MigrationError(Exception):
    """A failure the operator can act on; the message says what happened and what is left."""


@dataclass(frozen=True)
class LockPolicy:
    timeout_ms: int = 2000
    retries: int = 5
    pause_seconds: float = 1.0


# Other sessions holding a lock on the table, oldest transaction first.
_HOLDERS = """
SELECT DISTINCT a.pid, a.state, a.application_name,
       extract(epoch FROM now() - a.xact_start)::int AS seconds, left(a.query, 80) AS query,
       a.xact_start
  FROM pg_locks l
  JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.granted AND l.pid <> pg_backend_pid()
   AND l.relation = to_regclass(%(table)s)
 ORDER BY a.xact_start
 LIMIT 3
"""


def describe_holders(conn, table: str) -> str:
    """Who holds a lock on table, in one line (best effort: the holder may be gone already)."""
    try:
        with conn.cursor() as cur:
            cur.execute(_HOLDERS, {"table": table})
            rows = cur.fetchall()
        if not conn.autocommit:
            conn.rollback()
    except psycopg2.Error:
        return "unknown session"
    if not rows:
        return "a session that has since let go"
    return "; ".join(
        f"pid {pid} ({state}, transaction open {seconds}s, {app or 'no application_name'}: {query!r})"
        for pid, state, app, seconds, query, _ in rows
    )


def with_lock_retries(
    conn, table: str, work: Callable[[], T], policy: LockPolicy, say: Callable[[str], None]
) -> T:
    """Run work() (which runs its own transaction on conn); retry it when a lock times out."""
    for attempt in range(1, policy.retries + 1):
        try:
            return work()
        except psycopg2.errors.LockNotAvailable:
            if not conn.autocommit:
                conn.rollback()
            holders = describe_holders(conn, table)
            if attempt == policy.retries:
                raise MigrationError(
                    f"could not lock {table} within {policy.timeout_ms} ms, {policy.retries} times; "
                    f"held by {holders}. This step was rolled back and nothing is left half-done: "
                    "run the script again once that transaction has ended."
                ) from None
            say(
                f"  … {table} is locked by {holders}; "
                f"retrying in {policy.pause_seconds:g}s ({attempt}/{policy.retries})"
            )
            time.sleep(policy.pause_seconds)
    raise AssertionError("unreachable")
