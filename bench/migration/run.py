"""Timing figure of the migration: the large legacy database (100k conversations, 200k
participants, 1M messages), migrated once; prints rows per second.

    make bench-migration        # or: .venv/bin/python -m bench.migration.run [--conversations N]

Uses TEST_DATABASE_URL's server (else the embedded one), in a database of its own that it drops.
"""

from __future__ import annotations

import argparse
import sys
import time

from astegni.migration.runner import Options, migrate
from tests import legacy_fixture, pg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages-per-conversation", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=20_000)
    args = parser.parse_args()

    server = pg.server_url()
    name = pg.new_name("astegni_bench")
    url = pg.create_database(server, name)
    try:
        started = time.monotonic()
        legacy_fixture.create_legacy_schema(url)
        counts = legacy_fixture.build_large(url, args.conversations, args.messages_per_conversation)
        rows = sum(counts.values())
        print(f"legacy database built in {time.monotonic() - started:.1f}s: {counts}", flush=True)

        result = migrate(Options(url, batch_size=args.batch_size, say=lambda line: print(line, flush=True)))
        filled = result.rows_resolved
        print(
            f"\nmigration: {rows:,} rows ({filled:,} user ids filled) in {result.seconds:.1f}s "
            f"= {rows / result.seconds:,.0f} rows/s overall; "
            f"back-fill alone {filled / result.backfill_seconds:,.0f} rows/s"
        )
        again = migrate(Options(url, say=lambda line: None))
        print(f"second run (nothing to do): {again.seconds:.1f}s, changed: {again.changed}")
    finally:
        pg.drop_database(server, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
