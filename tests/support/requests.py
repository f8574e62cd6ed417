"""Helpers of the session-request tests: a valid body, table counts and rows, an expired request."""

from __future__ import annotations

from typing import Any

from astegni.core.database import Database
from tests.support.factories import TestUser

URL = "/api/session-requests"


def request_body(tutor: TestUser, package: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid recurring request for the tutor's package number `package`."""
    return {
        "tutor_id": tutor.role_ids["tutor"],
        "package_id": tutor.extra["packages"][package]["id"],
        "message": "I'd like to book sessions",
        "schedule_type": "recurring",
        "days": ["Monday", "Wednesday"],
        "start_time": "14:00",
        "end_time": "16:00",
        "counter_offer_price": 150.00,
    } | overrides


def scalar(db: Database, sql: str, *params: Any) -> Any:
    with db.transaction() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    return None if row is None else next(iter(row.values()))


def rows(db: Database, sql: str, *params: Any) -> list[dict[str, Any]]:
    with db.transaction() as cur:
        cur.execute(sql, params)
        return [dict(r) for r in cur.fetchall()]


def counts(db: Database) -> dict[str, int]:
    """How many rows each table the create writes holds."""
    tables = ("requested_sessions", "conversations", "conversation_participants", "chat_messages")
    return {table: scalar(db, f"SELECT count(*) FROM {table}") for table in tables}


def backdate(db: Database, request_id: int) -> None:
    """Put a request past its expiry (as if a week had gone by)."""
    with db.transaction() as cur:
        cur.execute(
            "UPDATE requested_sessions SET expires_at = now() - interval '1 second',"
            " created_at = now() - interval '8 days' WHERE id = %s",
            (request_id,),
        )
