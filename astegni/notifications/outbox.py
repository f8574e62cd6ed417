"""The outbox's rows: claim, outcomes, the chat digest scan, and the operator's CLI.

Each function is the database work of one step, `fn(cur, ...)` for Database.call/transaction.

    python -m astegni.notifications.outbox --dead          # rows that gave up
    python -m astegni.notifications.outbox --retry-dead    # send them again (or --retry-dead ID)
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from typing import Any

from astegni.core.queries import Queries, execute, fetch_all
from astegni.core.settings import Settings

queries = Queries("notifications/queries.sql")

# Sent and skipped rows are kept this long (the dedupe keys of events this old never recur).
KEEP_SENT_SECONDS = 30 * 24 * 3600
# Conversations whose last message is older than this (beyond the digest delay) are not scanned.
DIGEST_LOOKBACK_SECONDS = 2 * 24 * 3600


def claim(cur: Any, settings: Settings) -> tuple[str, list[dict[str, Any]]]:
    """Lease up to email_batch_size due rows; the token that records their outcome, and them."""
    token = str(uuid.uuid4())
    execute(cur, queries.email_bury_expired, {"max_attempts": settings.email_max_attempts})
    rows = fetch_all(
        cur,
        queries.email_claim,
        {"limit": settings.email_batch_size, "token": token, "lease_seconds": settings.email_lease_seconds},
    )
    return token, rows


def mark_sent(cur: Any, token: str, row_id: int, skipped: bool = False) -> None:
    status = "skipped" if skipped else "sent"
    execute(cur, queries.email_mark_sent, {"id": row_id, "token": token, "status": status})


def mark_failed(cur: Any, settings: Settings, token: str, row_id: int, error: str, permanent: bool) -> None:
    execute(
        cur,
        queries.email_mark_failed,
        {
            "id": row_id,
            "token": token,
            "error": error,
            "permanent": permanent,
            "max_attempts": settings.email_max_attempts,
            "base_backoff": settings.email_retry_base_seconds,
            "max_backoff": settings.email_retry_max_seconds,
        },
    )


def release(cur: Any, token: str, row_ids: list[int]) -> None:
    if row_ids:
        execute(cur, queries.email_release, {"ids": row_ids, "token": token})


def enqueue_digests(cur: Any, settings: Settings) -> int:
    """Outbox rows for the chat digests due now; how many."""
    execute(
        cur,
        queries.email_digest_enqueue,
        {
            "lookback_seconds": DIGEST_LOOKBACK_SECONDS + settings.chat_digest_delay_seconds,
            "delay_seconds": settings.chat_digest_delay_seconds,
            "interval_seconds": settings.chat_digest_interval_seconds,
        },
    )
    return cur.rowcount


def purge(cur: Any) -> None:
    execute(cur, queries.email_purge, {"keep_seconds": KEEP_SENT_SECONDS})


def dead(cur: Any, limit: int = 100) -> list[dict[str, Any]]:
    return fetch_all(cur, queries.email_dead, {"limit": limit})


def retry_dead(cur: Any, row_id: int | None = None) -> int:
    execute(cur, queries.email_retry_dead, {"id": row_id})
    return cur.rowcount


def main(argv: list[str] | None = None) -> None:
    from astegni.core.database import Database

    parser = argparse.ArgumentParser(description="Inspect the email outbox.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--dead", action="store_true", help="list rows that gave up (JSON lines)")
    group.add_argument("--retry-dead", nargs="?", const="all", metavar="ID", help="send dead rows again")
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args(argv)
    # Only the database: an operator's shell need not hold the server's SECRET_KEY.
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        parser.error("DATABASE_URL must be set")
    db = Database(database_url, pool_size=1)
    try:
        with db.transaction() as cur:
            if args.dead:
                for row in dead(cur, args.limit):
                    print(json.dumps(row, default=str))
            else:
                row_id = None if args.retry_dead == "all" else int(args.retry_dead)
                print(f"{retry_dead(cur, row_id)} row(s) pending again")
    finally:
        db.close()


if __name__ == "__main__":
    main()
