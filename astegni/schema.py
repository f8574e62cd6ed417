"""Applying schema.sql: creates the schema on an empty database, a no-op on a current one."""

from __future__ import annotations

from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().parent / "sql" / "schema.sql"
# Serialises concurrent start-ups (several workers or servers on one new database).
_SCHEMA_LOCK_KEY = 7_210_331


def apply_schema(conn) -> None:
    """Apply schema.sql in one transaction on a plain psycopg2 connection."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        cur.execute(SCHEMA_PATH.read_text())
