"""Back-filling the user id columns from the legacy (profile_type, profile_id) pairs.

A profile id alone means nothing: every profile table numbers from 1, so student 3, parent 3
and tutor 3 are three different people. Each row is resolved through the table its profile_type
names, by a set-based UPDATE ... FROM over one id range at a time: the next range holds the next
`batch_size` rows still NULL (an index range scan on the primary key), and each range is its own
short transaction. Rows that resolve to no user stay NULL and are skipped by the next range, so a
run that stops anywhere is finished by the next one, which starts from the rows still NULL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from psycopg2 import sql

from astegni.migration.locks import LockPolicy, with_lock_retries

# Every profile with its user, tagged with the profile_type that names its table.
PROFILES = sql.SQL(
    """(SELECT 'student'::text AS profile_type, id AS profile_id, user_id FROM student_profiles
        UNION ALL SELECT 'parent', id, user_id FROM parent_profiles
        UNION ALL SELECT 'tutor', id, user_id FROM tutor_profiles)"""
)


@dataclass(frozen=True)
class Backfill:
    table: str
    user_column: str
    profile_id: str
    profile_type: str

    @property
    def label(self) -> str:
        return f"{self.table}.{self.user_column}"

    def _names(self) -> dict[str, sql.Composable]:
        return {
            "table": sql.Identifier(self.table),
            "user": sql.Identifier(self.user_column),
            "pid": sql.Identifier(self.profile_id),
            "ptype": sql.Identifier(self.profile_type),
            "profiles": PROFILES,
        }

    def next_range_sql(self) -> sql.Composed:
        return sql.SQL(
            """SELECT max(id) FROM (
                   SELECT id FROM {table} WHERE id > %(after)s AND {user} IS NULL
                    ORDER BY id LIMIT %(limit)s) AS batch"""
        ).format(**self._names())

    def update_sql(self) -> sql.Composed:
        return sql.SQL(
            """UPDATE {table} AS t SET {user} = p.user_id
                 FROM {profiles} AS p
                WHERE t.id > %(after)s AND t.id <= %(upto)s AND t.{user} IS NULL
                  AND p.profile_type = t.{ptype} AND p.profile_id = t.{pid}"""
        ).format(**self._names())

    def counts_sql(self, has_user_column: bool = True) -> sql.Composed:
        """total, already set, resolvable now; read-only (the dry run and the summary)."""
        user = sql.SQL("t.{}").format(sql.Identifier(self.user_column))
        if not has_user_column:  # dry run before phase 1 added it
            user = sql.SQL("NULL::integer")
        return sql.SQL(
            """SELECT count(*), count({user}),
                      count(*) FILTER (WHERE {user} IS NULL AND p.user_id IS NOT NULL)
                 FROM {table} AS t
                 LEFT JOIN {profiles} AS p ON p.profile_type = t.{ptype} AND p.profile_id = t.{pid}"""
        ).format(**(self._names() | {"user": user}))

    def status_sql(self) -> sql.Composed:
        """After a complete back-fill: rows set, and the legacy rows still NULL (unresolvable by
        then); one scan, no join."""
        return sql.SQL(
            """SELECT count({user}),
                      coalesce(array_agg(id ORDER BY id) FILTER (WHERE {user} IS NULL AND {pid} IS NOT NULL),
                               '{{}}')
                 FROM {table}"""
        ).format(**self._names())

    def unresolved_sql(self, has_user_column: bool = True) -> sql.Composed:
        """Ids of legacy rows whose profile resolves to no user (left NULL)."""
        user = sql.SQL("t.{}").format(sql.Identifier(self.user_column))
        if not has_user_column:
            user = sql.SQL("NULL::integer")
        return sql.SQL(
            """SELECT t.id FROM {table} AS t
                 LEFT JOIN {profiles} AS p ON p.profile_type = t.{ptype} AND p.profile_id = t.{pid}
                WHERE {user} IS NULL AND p.user_id IS NULL AND t.{pid} IS NOT NULL
                ORDER BY t.id"""
        ).format(**(self._names() | {"user": user}))


BACKFILLS = (
    Backfill("conversations", "created_by_user_id", "created_by_profile_id", "created_by_profile_type"),
    Backfill("conversation_participants", "user_id", "profile_id", "profile_type"),
    Backfill("chat_messages", "sender_user_id", "sender_profile_id", "sender_profile_type"),
)


def run_backfill(
    conn, job: Backfill, batch_size: int, policy: LockPolicy, say: Callable[[str], None]
) -> tuple[int, float]:
    """Fill job's column where NULL; returns (rows updated, seconds)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {} IS NULL").format(
                sql.Identifier(job.table), sql.Identifier(job.user_column)
            )
        )
        todo = cur.fetchone()[0]
    started = last_report = time.monotonic()
    after, updated, seen_batches = 0, 0, 0
    next_range, update = job.next_range_sql(), job.update_sql()

    def one_batch() -> tuple[int | None, int]:
        with conn, conn.cursor() as cur:
            cur.execute(next_range, {"after": after, "limit": batch_size})
            upto = cur.fetchone()[0]
            if upto is None:
                return None, 0
            cur.execute(update, {"after": after, "upto": upto})
            return upto, cur.rowcount

    while True:
        upto, count = with_lock_retries(conn, job.table, one_batch, policy, say)
        if upto is None:
            break
        after, updated, seen_batches = upto, updated + count, seen_batches + 1
        now = time.monotonic()
        if count and (now - last_report >= 1.0 or seen_batches == 1):
            last_report = now
            rate = updated / max(now - started, 1e-6)
            say(f"  {job.label}: {updated}/{todo} rows filled, up to id {upto} ({rate:,.0f} rows/s)")
    seconds = time.monotonic() - started
    if updated:
        say(f"  {job.label}: {updated}/{todo} rows filled in {seconds:.1f}s")
    return updated, seconds
