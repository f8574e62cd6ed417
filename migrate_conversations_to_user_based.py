"""Migrate the chat tables of an Astegni database from profile-based to user-based identity.

    python migrate_conversations_to_user_based.py [--database-url URL] [--dry-run] [--batch-size N]

Adds and back-fills conversations.created_by_user_id, fills conversation_participants.user_id
and chat_messages.sender_user_id where NULL (through the profile table that profile_type names),
makes the legacy profile columns nullable (kept, values unchanged) and adds the columns, keys and
indexes the application needs. Safe to interrupt and to run again; see astegni/migration/.
The database: --database-url, else $DATABASE_URL, else the embedded PostgreSQL of `make run`
under .data/pg ($ASTEGNI_DATA_DIR/pg), started for the run and stopped afterwards unless another
process (the running app) uses it too.
Exit status: 0 done (or nothing to do), 1 failed (finished steps kept; run again to complete).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

import psycopg2

from astegni.migration.locks import LockPolicy, MigrationError
from astegni.migration.report import summary
from astegni.migration.runner import Options, migrate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="PostgreSQL URL (default: $DATABASE_URL, else the embedded database of `make run`)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="report what would change and change nothing (read-only session)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=20_000, help="rows per back-fill transaction (default 20000)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="parallel back-fill connections (default 2)",
    )
    parser.add_argument(
        "--lock-timeout-ms",
        type=int,
        default=2000,
        help="longest wait for a table lock before backing off (default 2000)",
    )
    parser.add_argument(
        "--lock-retries", type=int, default=5, help="tries per step before giving up on a lock (default 5)"
    )
    args = parser.parse_args(argv)
    if min(args.batch_size, args.jobs, args.lock_timeout_ms, args.lock_retries) < 1:
        parser.error("--batch-size, --jobs, --lock-timeout-ms and --lock-retries must be positive")
    return args


@contextlib.contextmanager
def database_url(explicit: str | None) -> Iterator[str]:
    """The URL given, else the embedded server's: started (or joined) here, let go afterwards.

    Joining a server the app already runs adds this process to its handles, so letting go leaves
    it running; a server started here stops when this process lets go.
    """
    if explicit:
        yield explicit
        return
    from astegni.core.embedded import embedded_server, stop_embedded_postgres
    from astegni.core.settings import DATA_DIR

    data_dir = DATA_DIR / "pg"
    if not (data_dir / "PG_VERSION").is_file():
        raise MigrationError(
            f"no database: no --database-url, no DATABASE_URL, and no embedded database at {data_dir}"
        )
    server = embedded_server(data_dir)
    try:
        yield server.get_uri()
    finally:
        stop_embedded_postgres(server)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        with database_url(args.database_url) as url:
            return _run(args, url, say)
    except MigrationError as exc:
        say(f"✗ Migration failed: {exc}")
        return 1


def _run(args: argparse.Namespace, url: str, say) -> int:
    options = Options(
        database_url=url,
        dry_run=args.dry_run,
        batch_size=args.batch_size,
        jobs=args.jobs,
        lock=LockPolicy(timeout_ms=args.lock_timeout_ms, retries=args.lock_retries),
        say=say,
    )
    say("Migrating conversations to user-based identity" + (" (dry run)" if args.dry_run else ""))
    try:
        result = migrate(options)
    except MigrationError as exc:
        say(f"✗ Migration failed: {exc}")
        return 1
    except psycopg2.Error as exc:
        say(
            f"✗ Migration failed: {str(exc).strip()}\n"
            "  The step in progress was rolled back; finished steps are kept. Run again to complete."
        )
        return 1
    for line in summary(result, args.dry_run):
        say(line)
    say(f"Done in {result.seconds:.1f}s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
