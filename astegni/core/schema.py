"""The schema: numbered migrations, each applied once, then the repeatable objects.

astegni/core/migrations/NNNN_name.sql run in version order, each in its own transaction with its
row in schema_migrations (version, name, checksum). Each domain's functions.sql (functions and
views) are re-created, all together in one transaction, whenever one of them changed or a
migration ran; their checksums are in schema_repeatables. A start-up against a current database
only reads those two tables; otherwise the work runs under one advisory lock, so that processes
starting together on one database apply each migration exactly once. docs/schema.md tells how
to add a migration.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

log = logging.getLogger("astegni.core.schema")

PACKAGE_DIR = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = PACKAGE_DIR / "core" / "migrations"
# In this order: a LANGUAGE sql function's body is checked when it is created, so what it calls
# must exist by then (PL/pgSQL bodies are resolved at their first call).
REPEATABLE_FILES = (
    "core/functions.sql",
    "accounts/functions.sql",
    "chat/functions.sql",
    "notifications/functions.sql",
    "session_requests/functions.sql",
)
# The migration that creates the schema of an empty database. A database made by the unversioned
# schema.sql (it has schema_state, not schema_migrations) is recorded at this version without
# running it: the next migration brings any such database to this baseline.
BASELINE_VERSION = 1
# Serialises concurrent start-ups (several workers or servers on one database).
_SCHEMA_LOCK_KEY = 7_210_331
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_DEFINED = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|VIEW)\s+(\w+)", re.IGNORECASE)

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS schema_repeatables (
    name       text        PRIMARY KEY,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


class SchemaError(RuntimeError):
    """The database's recorded schema and the files disagree in a way no start-up may repair."""


@dataclass(frozen=True)
class Script:
    version: int  # a migration's number; a repeatable file's position
    name: str  # the file name
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Script]:
    scripts: dict[int, Script] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise SchemaError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in scripts:
            raise SchemaError(f"migrations {scripts[version].name} and {path.name} share a number")
        scripts[version] = Script(version, path.name, path.read_text())
    return [scripts[v] for v in sorted(scripts)]


def repeatables(directory: Path = PACKAGE_DIR) -> list[Script]:
    return [Script(i, n, (directory / n).read_text()) for i, n in enumerate(REPEATABLE_FILES)]


def apply_schema(conn, migrations_dir: Path = MIGRATIONS_DIR) -> bool:
    """Bring the database on a plain psycopg2 connection to the files' schema.

    Returns whether anything was applied. Raises SchemaError when a migration already applied
    differs from its file (its name and version are in the message).
    """
    steps, objects = migrations(migrations_dir), repeatables()
    with conn, _cursor(conn) as cur:
        if _is_current(cur, steps, objects):  # no lock taken: a restart touches nothing
            return False
    with _advisory_lock(conn):
        return _apply_locked(conn, steps, objects)


@contextlib.contextmanager
def _advisory_lock(conn):
    """The schema lock for the session: it spans the transactions of the migrations."""
    with conn, _cursor(conn) as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK_KEY,))
    try:
        yield
    finally:
        # A broken connection has lost the lock with its session already.
        with contextlib.suppress(psycopg2.Error), conn, _cursor(conn) as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK_KEY,))


def _is_current(cur, steps: list[Script], objects: list[Script]) -> bool:
    applied = _applied(cur)
    if applied is None:
        return False
    _check_unchanged(applied, steps)
    if any(step.version not in applied for step in steps):
        return False
    return _repeatable_checksums(cur) == {obj.name: obj.checksum for obj in objects}


def _apply_locked(conn, steps: list[Script], objects: list[Script]) -> bool:
    with conn, _cursor(conn) as cur:
        cur.execute(
            "SELECT to_regclass('schema_migrations') IS NULL AND to_regclass('schema_state') IS NOT NULL"
        )
        unversioned = cur.fetchone()[0]
        cur.execute(_BOOKKEEPING)
        if unversioned:
            [baseline] = [step for step in steps if step.version == BASELINE_VERSION]
            _record(cur, baseline)
            log.info("schema: an unversioned database, recorded at %s", baseline.name)
        applied = _applied(cur)
    _check_unchanged(applied, steps)
    ran = False
    for step in steps:
        if step.version in applied:
            continue
        with conn, _cursor(conn) as cur:
            cur.execute(step.text)
            _record(cur, step)
        log.info("schema: applied migration %s", step.name)
        ran = True
    with conn, _cursor(conn) as cur:
        if ran or _repeatable_checksums(cur) != {obj.name: obj.checksum for obj in objects}:
            _recreate(cur, objects)
            log.info("schema: re-created the functions and views")
            return True
    return ran


def _recreate(cur, objects: list[Script]) -> None:
    """Every function and view the files define, dropped and created again in one transaction.

    Dropping first, by name (every overload in the current schema, found in pg_proc), lets a
    file change a function's parameters or result type, or a view's columns, which CREATE OR
    REPLACE cannot, and leaves no old overload behind; the transaction keeps other sessions from
    ever seeing them missing. Without CASCADE: an object outside these files that depends on one
    of them stops the step loudly instead of vanishing with it.
    """
    defined = [m.groups() for obj in objects for m in _DEFINED.finditer(obj.text)]
    for kind, name in defined:
        if kind.upper() == "VIEW":
            cur.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(name)))
    functions = sorted({name for kind, name in defined if kind.upper() == "FUNCTION"})
    cur.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p"
        " WHERE p.pronamespace = current_schema()::regnamespace AND p.proname = ANY (%s)",
        (functions,),
    )
    for (signature,) in cur.fetchall():
        # Catalog text (regprocedure quotes what needs quoting), not a value.
        cur.execute(sql.SQL("DROP FUNCTION {}").format(sql.SQL(signature)))
    for obj in objects:
        cur.execute(obj.text)
    cur.execute("DELETE FROM schema_repeatables")
    cur.executemany(
        "INSERT INTO schema_repeatables (name, checksum) VALUES (%s, %s)",
        [(obj.name, obj.checksum) for obj in objects],
    )


def _cursor(conn):
    """A plain tuple cursor, whatever cursor the connection's owner made the default."""
    return conn.cursor(cursor_factory=psycopg2.extensions.cursor)


def _record(cur, step: Script) -> None:
    cur.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
        (step.version, step.name, step.checksum),
    )


def _applied(cur) -> dict[int, tuple[str, str]] | None:
    cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not cur.fetchone()[0]:
        return None
    cur.execute("SELECT version, name, checksum FROM schema_migrations")
    return {version: (name, checksum) for version, name, checksum in cur.fetchall()}


def _check_unchanged(applied: dict[int, tuple[str, str]], steps: list[Script]) -> None:
    for step in steps:
        if step.version in applied and applied[step.version][1] != step.checksum:
            raise SchemaError(
                f"migration {step.name} was applied to this database and its file has changed"
                " since: put the change in a new migration, and restore the file"
            )


def _repeatable_checksums(cur) -> dict[str, str]:
    cur.execute("SELECT to_regclass('schema_repeatables') IS NOT NULL")
    if not cur.fetchone()[0]:
        return {}
    cur.execute("SELECT name, checksum FROM schema_repeatables")
    return dict(cur.fetchall())
