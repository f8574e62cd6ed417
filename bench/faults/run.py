"""PostgreSQL restarted again and again under steady write load, for minutes.

    make faults                       # or: .venv/bin/python -m bench.faults.run --minutes 3

Starts a throwaway embedded PostgreSQL (never the shared one) and `python app.py` with
WORKERS=2 on it, runs bench/faults/load.py's writers (idempotent creates, chat sends, cancels,
reads), and every --every seconds stops PostgreSQL (fast and immediate in turn), keeps it down
--down seconds and starts it again. Prints per restart the time until the service answered 200
again, then the status counts, p50/p99 latency, and the audit of the database against every
acknowledged write. Exits 1 on any 500 or other unexpected status, a lost or doubled write, a
recovery slower than 5 s, or leaked connections.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.faults.load import Load, lost_or_doubled, percentile
from tests import pg
from tests.support.live import LiveServer
from tests.support.remote import sql
from tests.throwaway_pg import ThrowawayServer

RECOVERY_SECONDS = 5.0


def app_backends(db_url: str) -> list[str]:
    rows = sql(
        db_url,
        "SELECT state FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'astegni'",
    )
    return [row[0] for row in rows]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between restarts")
    parser.add_argument("--down", type=float, default=2.0, help="seconds PostgreSQL stays down")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=8)
    args = parser.parse_args()

    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="astegni-faults-") as tmp:
        database = ThrowawayServer(Path(tmp) / "pg")
        server = None
        try:
            db_url = pg.create_database(database.url, pg.new_name("astegni_bench"))
            server = LiveServer(db_url, WORKERS=str(args.workers), DB_POOL_SIZE=str(args.pool_size))
            print(f"server {server.url} (WORKERS={args.workers}), {args.writers} writers, {args.minutes} min")
            recoveries: list[float] = []
            with Load(server.url, writers=args.writers, tag="faults") as load:
                load.wait_for_acks(50)
                end = time.monotonic() + args.minutes * 60
                modes = ["fast", "immediate"]
                while time.monotonic() + args.every < end:
                    time.sleep(args.every)
                    mode = modes[len(recoveries) % 2]
                    database.stop(mode)
                    time.sleep(args.down)
                    database.start()
                    back = time.monotonic()
                    deadline = back + 60
                    while load.recovery_after(back) is None and time.monotonic() < deadline:
                        time.sleep(0.05)
                    recovery = load.recovery_after(back)
                    recoveries.append(recovery if recovery is not None else float("inf"))
                    n, took = len(recoveries), recoveries[-1]
                    print(f"  restart {n} ({mode}, down {args.down:g}s): 200 again after {took:.2f}s")
                time.sleep(max(0.0, end - time.monotonic()))
            statuses = load.statuses()
            latencies = [x for w in load.writers for x in w.books.latencies]
            transport = sum(w.books.transport_errors for w in load.writers)
            creates = sum(len(w.books.creates) for w in load.writers)
            messages = sum(len(w.books.messages) for w in load.writers)
            print(f"statuses: {dict(sorted(statuses.items()))}; transport errors: {transport}")
            print(f"acknowledged: {creates} session requests, {messages} chat messages")
            p50, p99 = (percentile(latencies, p) * 1000 for p in (50, 99))
            print(f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms (503s and retries included)")
            if recoveries:
                print(f"recovery: worst {max(recoveries):.2f}s over {len(recoveries)} restarts")
            problems += load.problems()
            problems += lost_or_doubled(db_url, load.writers)
            problems += [
                f"recovery {r:.2f}s > {RECOVERY_SECONDS}s" for r in recoveries if r > RECOVERY_SECONDS
            ]
            states = app_backends(db_url)
            limit = args.workers * args.pool_size
            print(
                f"app connections after the run: {len(states)} (limit {limit}), states {sorted(set(states))}"
            )
            if len(states) > limit or set(states) - {"idle"}:
                problems.append(f"connections after the run: {states}")
        finally:
            if server is not None:
                server.stop()
            database.close()
    print("audit: every acknowledged write present once, nothing else" if not problems else "PROBLEMS:")
    for problem in problems:
        print(f"  ✗ {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
