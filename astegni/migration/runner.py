"""The migration, phase by phase (its summary: report.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg2

from astegni.migration import identity, steps
from astegni.migration.backfill import BACKFILLS, run_backfills
from astegni.migration.catalog import Catalog, missing_legacy_tables, read_catalog
from astegni.migration.locks import LockPolicy, MigrationError, with_lock_retries


@dataclass
class Options:
    database_url: str
    dry_run: bool = False
    batch_size: int = 20_000
    jobs: int = 2  # parallel back-fill workers (connections)
    lock: LockPolicy = field(default_factory=LockPolicy)
    say: Callable[[str], None] = print


@dataclass
class Result:
    """What a run changed (or, in a dry run, would change) and what it could not resolve."""

    conversations: int = 0
    schema_changes: list[str] = field(default_factory=list)
    resolved: dict[str, int] = field(default_factory=dict)  # column -> rows filled
    already_set: dict[str, int] = field(default_factory=dict)
    # column -> (row id, profile_type) of the rows left NULL
    unresolved: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    profile_types: tuple[str, ...] = ()  # the types that resolve (their <type>_profiles exists)
    made_nullable: list[str] = field(default_factory=list)
    duplicates: list[identity.Duplicate] = field(default_factory=list)
    duplicate_pairs: list[identity.DuplicatePair] = field(default_factory=list)
    pair_keys_set: int = 0
    not_validated: list[str] = field(default_factory=list)
    backfill_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(
            self.schema_changes or any(self.resolved.values()) or self.duplicates or self.pair_keys_set
        )

    @property
    def rows_resolved(self) -> int:
        return sum(self.resolved.values())


def connect(url: str, policy: LockPolicy):
    conn = psycopg2.connect(url, application_name="astegni-migration", connect_timeout=10)
    with conn, conn.cursor() as cur:
        # A server-wide statement_timeout would cut a long index build or validation short.
        cur.execute("SET statement_timeout = 0")
        # Never wait longer than this for a lock (each step retries a few times instead).
        cur.execute("SELECT set_config('lock_timeout', %(ms)s, false)", {"ms": f"{policy.timeout_ms}ms"})
    return conn


def migrate(options: Options) -> Result:
    started = time.monotonic()
    try:
        conn = connect(options.database_url, options.lock)
    except psycopg2.OperationalError as exc:
        raise MigrationError(f"cannot connect to the database: {' '.join(str(exc).split())}") from None
    try:
        with conn, conn.cursor() as cur:
            missing = missing_legacy_tables(cur)
            if missing:
                raise MigrationError(
                    f"not an Astegni database: missing table(s) {', '.join(missing)}; nothing was changed"
                )
        if options.dry_run:
            conn.set_session(readonly=True)  # the server itself refuses any write
            result = _plan(conn)
        else:
            result = _apply(conn, options)
    finally:
        conn.close()
    result.seconds = time.monotonic() - started
    return result


# ---------------------------------------------------------------- dry run


def _plan(conn) -> Result:
    result = Result()
    with conn, conn.cursor() as cur:
        cat = read_catalog(cur)
        result.profile_types = cat.profile_types
        result.schema_changes = [s.action for s in steps.COLUMN_STEPS if s.due(cat)]
        result.schema_changes += [
            s.action for s in (*steps.timestamp_steps(cat), *steps.legacy_check_steps(cat))
        ]
        result.schema_changes += [s.action for s in steps.INDEX_STEPS if s.due(cat)]
        if steps.PAIR_KEY.due(cat):
            result.schema_changes.append(steps.PAIR_KEY.action)
        result.schema_changes += [s.action for s in steps.CONSTRAINT_STEPS if s.due(cat)]
        result.schema_changes += [
            f"validate {name}" for table, name in steps.VALIDATIONS if steps.validation_due(cat, table, name)
        ]
        result.made_nullable = [c for c in steps.NULLABLE_COLUMNS if cat.not_null(*c.split("."))]
        for job in (base.for_types(cat.profile_types) for base in BACKFILLS):
            has_column = cat.has_column(job.table, job.user_column)
            cur.execute(job.counts_sql(has_column))
            _total, already, resolvable = cur.fetchone()
            result.resolved[job.label] = resolvable
            result.already_set[job.label] = already
            cur.execute(job.unresolved_sql(has_column))
            result.unresolved[job.label] = cur.fetchall()
        migrated, types = _has_identity_columns(cat), cat.profile_types
        result.duplicates = identity.find_duplicates(cur, migrated, types)
        result.duplicate_pairs = identity.find_duplicate_pairs(cur, migrated, types)
        result.pair_keys_set = identity.count_pairs_to_set(cur, migrated, types)
        cur.execute("SELECT count(*) FROM conversations")
        result.conversations = cur.fetchone()[0]
    return result


def _has_identity_columns(cat: Catalog) -> bool:
    return cat.has_column("conversation_participants", "duplicate_of_id") and cat.has_column(
        "conversations", "direct_user_low"
    )


# ---------------------------------------------------------------- the real run


def _apply(conn, options: Options) -> Result:
    result = Result()
    say, policy = options.say, options.lock

    # Phase 1: columns, nullability, timestamptz, legacy checks. One short transaction per table.
    cat = _catalog(conn)
    result.profile_types = cat.profile_types
    result.made_nullable = [c for c in steps.NULLABLE_COLUMNS if cat.not_null(*c.split("."))]
    phase_one = (*steps.COLUMN_STEPS, *steps.timestamp_steps(cat), *steps.legacy_check_steps(cat))
    _run_steps(conn, phase_one, cat, result, policy, say)

    # Phase 2: the back-fills.
    def worker_connection():
        return connect(options.database_url, policy)

    result.resolved, result.backfill_seconds = run_backfills(
        worker_connection, cat.profile_types, options.batch_size, options.jobs, policy, say
    )

    # Phase 3: duplicate participants, then the canonical direct conversation of each pair.
    began = time.monotonic()
    result.duplicates = identity.mark_duplicates(conn, policy, say)
    marked = len(result.duplicates)
    say(f"  identity: {marked} duplicate participant rows marked ({time.monotonic() - began:.1f}s)")
    began = time.monotonic()
    result.pair_keys_set = identity.set_pair_keys(conn, options.batch_size, policy, say)
    say(f"  identity: {result.pair_keys_set} pair keys set ({time.monotonic() - began:.1f}s)")

    # Phase 4: indexes (CONCURRENTLY), the pair key constraint, validation.
    cat = _catalog(conn)
    for index in steps.INDEX_STEPS:
        if index.due(cat):
            began = time.monotonic()
            _build_index(conn, index, policy, say)
            result.schema_changes.append(index.action)
            say(f"  schema: {index.action} ({time.monotonic() - began:.1f}s)")
    cat = _catalog(conn)
    _run_steps(conn, (steps.PAIR_KEY, *steps.CONSTRAINT_STEPS), cat, result, policy, say)
    cat = _catalog(conn)
    for table, name in steps.VALIDATIONS:
        if cat.constraints.get((table, name)) is False:
            try:
                began = time.monotonic()
                sql = f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}"
                _run_in_transaction(conn, table, [sql], policy, say)
                result.schema_changes.append(f"validate {name}")
                say(f"  schema: validate {name} ({time.monotonic() - began:.1f}s)")
            except psycopg2.IntegrityError as exc:
                # Legacy user ids pointing at deleted users: the key still guards new rows.
                conn.rollback()
                result.not_validated.append(f"{name}: {str(exc).strip().splitlines()[0]}")

    # The report: counts and unresolved rows as they stand now.
    with conn, conn.cursor() as cur:
        for job in BACKFILLS:
            cur.execute(job.status_sql())
            already, unresolved = cur.fetchone()
            result.unresolved[job.label] = [(int(row_id), kind) for row_id, kind in unresolved]
            result.already_set[job.label] = already - result.resolved[job.label]
        result.duplicate_pairs = identity.kept_duplicate_pairs(cur)
        cur.execute("SELECT count(*) FROM conversations")
        result.conversations = cur.fetchone()[0]
    if result.changed:
        conn.autocommit = True
        with conn.cursor() as cur:  # fresh statistics for the new columns and indexes
            cur.execute("ANALYZE conversations, conversation_participants, chat_messages")
        conn.autocommit = False
    return result


def _run_steps(conn, due_steps, cat: Catalog, result: Result, policy: LockPolicy, say) -> None:
    """The due steps, one short transaction per table."""
    tables = dict.fromkeys(s.table for s in due_steps)
    for table in tables:
        due = [s for s in due_steps if s.table == table and s.due(cat)]
        if due:
            began = time.monotonic()
            _run_in_transaction(conn, table, [s.sql for s in due], policy, say)
            result.schema_changes += [s.action for s in due]
            actions = "; ".join(s.action for s in due)
            say(f"  schema: {table}: {actions} ({time.monotonic() - began:.1f}s)")


def _catalog(conn) -> Catalog:
    with conn, conn.cursor() as cur:
        return read_catalog(cur)


def _run_in_transaction(conn, table: str, statements: list, policy: LockPolicy, say) -> None:
    def work() -> None:
        with conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)  # fixed DDL text from steps.py

    with_lock_retries(conn, table, work, policy, say)


def _build_index(conn, index: steps.IndexStep, policy: LockPolicy, say) -> None:
    """CREATE INDEX CONCURRENTLY: outside a transaction block, readers and writers carry on."""

    def work() -> None:
        with conn.cursor() as cur:
            # A build that timed out or was killed leaves an invalid index behind: drop, rebuild.
            cur.execute(
                "SELECT 1 FROM pg_class WHERE relname = %(name)s "
                "AND relnamespace = current_schema()::regnamespace",
                {"name": index.name},
            )
            if cur.fetchone() is not None:
                cur.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.name}")
            cur.execute(index.create_sql)  # fixed DDL text from steps.py

    conn.autocommit = True
    try:
        with_lock_retries(conn, index.table, work, policy, say)
    finally:
        conn.autocommit = False
