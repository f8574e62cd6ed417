"""Applying schema.sql: creates the schema on an empty database, a no-op on a current one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg2.extensions

SCHEMA_PATH = Path(__file__).resolve().parent / "sql" / "schema.sql"
# Serialises concurrent start-ups (several workers or servers on one new database).
_SCHEMA_LOCK_KEY = 7_210_331


def apply_schema(conn) -> bool:
    """Apply schema.sql on a plain psycopg2 connection unless this very file was applied already.

    Every statement of the file is idempotent, but CREATE INDEX IF NOT EXISTS still locks its
    table; the checksum check keeps a restart against a current database from touching anything.
    Returns whether the file was applied.
    """
    text = SCHEMA_PATH.read_text()
    checksum = hashlib.sha256(text.encode()).hexdigest()
    with conn, conn.cursor(cursor_factory=psycopg2.extensions.cursor) as cur:
        if _applied_checksum(cur) == checksum:
            return False
    with conn, conn.cursor(cursor_factory=psycopg2.extensions.cursor) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        if _applied_checksum(cur) == checksum:  # another process applied it meanwhile
            return False
        cur.execute(text)
        cur.execute(
            "INSERT INTO schema_state (checksum) VALUES (%s)"
            " ON CONFLICT (id) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
            (checksum,),
        )
    return True


def _applied_checksum(cur) -> str | None:
    cur.execute("SELECT to_regclass('schema_state') IS NOT NULL")
    if not cur.fetchone()[0]:
        return None
    cur.execute("SELECT checksum FROM schema_state")
    row = cur.fetchone()
    return row[0] if row else None
