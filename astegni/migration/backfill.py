"""Back-filling the user id columns from the legacy (profile_type, profile_id) pairs.

A profile id alone means nothing: every profile table numbers from 1, so student 3, parent 3
and tutor 3 are three different people. Each row is resolved through the table its profile_type
names (every <type>_profiles table the catalog holds: advertiser_profiles too where it exists),
by a set-based UPDATE ... FROM over one id range at a time: the next range holds the next
`batch_size` rows still NULL (an index range scan on the primary key), and each range is its own
short transaction. Rows that resolve to no user stay NULL and are skipped by the next range, so a
run that stops anywhere is finished by the next one, which starts from the rows still NULL.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from psycopg2 import sql

from astegni.migration.locks import LockPolicy, with_lock_retries


def profiles_sql(profile_types: tuple[str, ...]) -> sql.Composed:
    """Every profile with its user, tagged with the profile_type that names its table."""
    selects = [
        sql.SQL("SELECT {type}::text AS profile_type, id AS profile_id, user_id FROM {table}").format(
            type=sql.Literal(kind), table=sql.Identifier(f"{kind}_profiles")
        )
        for kind in profile_types
    ]
    return sql.Composed([sql.SQL("("), sql.SQL(" UNION ALL ").join(selects), sql.SQL(")")])


@dataclass(frozen=True)
class Backfill:
    table: str
    user_column: str
    profile_id: str
    profile_type: str
    profiles: sql.Composable | None = None  # profiles_sql() of the database at hand (for_types)

    def for_types(self, profile_types: tuple[str, ...]) -> Backfill:
        return replace(self, profiles=profiles_sql(profile_types))

    @property
    def label(self) -> str:
        return f"{self.table}.{self.user_column}"

    def _names(self) -> dict[str, sql.Composable]:
        return {
            "table": sql.Identifier(self.table),
            "user": sql.Identifier(self.user_column),
            "pid": sql.Identifier(self.profile_id),
            "ptype": sql.Identifier(self.profile_type),
            "profiles": self.profiles,
        }

    def next_range_sql(self) -> sql.Composed:
        return sql.SQL(
            """SELECT max(id) FROM (
                   SELECT id FROM {table}
                    WHERE id > %(after)s AND id <= %(upto)s AND {user} IS NULL
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
        then) as (id, profile_type) pairs; one scan, no join."""
        return sql.SQL(
            """SELECT count({user}),
                      coalesce(array_agg(ARRAY[id::text, {ptype}::text] ORDER BY id)
                                   FILTER (WHERE {user} IS NULL AND {pid} IS NOT NULL),
                               '{{}}')
                 FROM {table}"""
        ).format(**self._names())

    def unresolved_sql(self, has_user_column: bool = True) -> sql.Composed:
        """(id, profile_type) of legacy rows whose profile resolves to no user (left NULL)."""
        user = sql.SQL("t.{}").format(sql.Identifier(self.user_column))
        if not has_user_column:
            user = sql.SQL("NULL::integer")
        return sql.SQL(
            """SELECT t.id, t.{ptype}::text FROM {table} AS t
                 LEFT JOIN {profiles} AS p ON p.profile_type = t.{ptype} AND p.profile_id = t.{pid}
                WHERE {user} IS NULL AND p.user_id IS NULL AND t.{pid} IS NOT NULL
                ORDER BY t.id"""
        ).format(**(self._names() | {"user": user}))


BACKFILLS = (
    Backfill("conversations", "created_by_user_id", "created_by_profile_id", "created_by_profile_type"),
    Backfill("conversation_participants", "user_id", "profile_id", "profile_type"),
    Backfill("chat_messages", "sender_user_id", "sender_profile_id", "sender_profile_type"),
)


@dataclass
class _Progress:
    """Rows filled so far, shared by the workers; one progress line a second at most."""

    say: Callable[[str], None]
    todo: int
    started: float = field(default_factory=time.monotonic)
    filled: dict[str, int] = field(default_factory=dict)
    last_line: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, label: str, count: int) -> None:
        with self.lock:
            self.filled[label] = self.filled.get(label, 0) + count
            now = time.monotonic()
            if count and now - self.last_line >= 1.0:
                self.last_line = now
                done = sum(self.filled.values())
                rate = done / max(now - self.started, 1e-6)
                self.say(f"  back-fill: {done:,}/{self.todo:,} NULL rows filled ({rate:,.0f} rows/s)")


def _segments(low: int, high: int, parts: int) -> list[tuple[int, int]]:
    """(after, upto] id ranges that together cover [low, high]."""
    step = max((high - low + 1) // parts, 1)
    bounds = [low - 1 + step * i for i in range(parts)] + [high]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def run_backfills(
    connect: Callable[[], object],
    profile_types: tuple[str, ...],
    batch_size: int,
    jobs: int,
    policy: LockPolicy,
    say: Callable[[str], None],
) -> tuple[dict[str, int], float]:
    """Fill every user id column where NULL; returns (rows filled per column, seconds).

    Each table's id range is cut into `jobs` segments and the segments of all tables are worked
    by `jobs` threads, each with its own connection: the UPDATEs run in parallel on the server.
    A failure stops the other workers after their current batch; what was committed stays.
    """
    conn = connect()
    plan: list[tuple[Backfill, int, int]] = []
    todo = 0
    try:
        with conn, conn.cursor() as cur:
            for base in BACKFILLS:
                job = base.for_types(profile_types)
                cur.execute(
                    sql.SQL("SELECT min(id), max(id), count(*) FILTER (WHERE {} IS NULL) FROM {}").format(
                        sql.Identifier(job.user_column), sql.Identifier(job.table)
                    )
                )
                low, high, nulls = cur.fetchone()
                todo += nulls
                if nulls:
                    plan += [(job, a, b) for a, b in _segments(low, high, jobs)]
    finally:
        conn.close()
    progress = _Progress(say, todo)
    stop = threading.Event()

    def work(job: Backfill, after: int, upto_limit: int) -> None:
        worker = connect()
        try:
            _fill_segment(worker, job, after, upto_limit, batch_size, policy, say, progress, stop)
        except BaseException:
            stop.set()
            raise
        finally:
            worker.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(work, *unit) for unit in plan]
        for future in futures:
            future.result()  # the first failure is raised (the others have stopped)
    seconds = time.monotonic() - progress.started
    if todo:
        say(f"  back-fill: {sum(progress.filled.values()):,} rows filled in {seconds:.1f}s")
    return {job.label: progress.filled.get(job.label, 0) for job in BACKFILLS}, seconds


def _fill_segment(conn, job, after, limit, batch_size, policy, say, progress, stop) -> None:
    next_range, update = job.next_range_sql(), job.update_sql()

    def one_batch() -> tuple[int | None, int]:
        with conn, conn.cursor() as cur:
            cur.execute(next_range, {"after": after, "upto": limit, "limit": batch_size})
            upto = cur.fetchone()[0]
            if upto is None:
                return None, 0
            cur.execute(update, {"after": after, "upto": upto})
            return upto, cur.rowcount

    while not stop.is_set():
        upto, count = with_lock_retries(conn, job.table, one_batch, policy, say)
        if upto is None:
            return
        after = upto
        progress.add(job.label, count)
