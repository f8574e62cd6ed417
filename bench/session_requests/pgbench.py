"""pgbench running what the endpoint sends, the benchmark's baseline."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

from bench.session_requests.data import (
    EXPIRY_SECONDS,
    RATE_LIMIT,
    analyze_written_tables,
    count_rows,
    pair_count,
)

# What the endpoint sends, as pgbench sends it: the one statement (autocommit, as on the app's
# async connections; the same call as sr_create in astegni/session_requests/queries.sql with the
# values the wrk script sends), then the NOTIFY of its event, committed without waiting for the
# WAL flush (the app's Sender, astegni/core/events.py, batches these on a connection of its own;
# here each client sends its own, the baseline's worst case). Pairs are walked in the
# order create.lua walks them (n counts each client's transactions, pgbench keeps a client's
# variables between them; off is the offset in the pair space, as create.lua's), so both runs
# write the same rows: a new conversation for a student's first package of a tutor, the existing
# one for that tutor's other packages.
PGBENCH_SCRIPT = """\\set k :off + :client_id + :n * {clients}
\\set n :n + 1
\\set student 1 + :k % {students}
\\set package 1 + (:k / {students} + (:student - 1) * {packages}) % {all_packages}
\\set tutor 1 + (:package - 1) / {packages}
SELECT coalesce(events[1], '') AS event
  FROM session_request_create(:student, 'student', :tutor, :package, NULL,
       'I would like to book sessions', 'recurring', '{{Monday,Wednesday}}'::text[], '{{}}'::date[],
       '14:00'::time, '16:00'::time, 'Africa/Addis_Ababa', 150.00::numeric, NULL, '{{}}'::int[],
       '{{}}'::text[], 1, {expiry}::float8, {rate})
\\gset
SELECT pg_notify('astegni_events', payload)
  FROM unnest(ARRAY[:event]::text[]) AS payload, set_config('synchronous_commit', 'off', true);
"""


def run_pgbench(url: str, args: argparse.Namespace, workdir: Path) -> dict:
    script = workdir / "create.sql"
    script.write_text(
        PGBENCH_SCRIPT.format(
            clients=args.connections,
            students=args.students,
            packages=args.packages,
            all_packages=args.tutors * args.packages,
            expiry=EXPIRY_SECONDS,
            rate=RATE_LIMIT,
        )
    )
    log_prefix = workdir / "pgbench"

    def pgbench(duration: int, offset: int, log: bool) -> str:
        command = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-D",
            "n=0",
            "-D",
            f"off={offset}",
            "-c",
            str(args.connections),
            "-j",
            str(args.threads),
            "-T",
            str(duration),
            "-f",
            str(script),
            *(["-l", "--log-prefix", str(log_prefix)] if log else []),
            url,  # pgbench takes a connection URI as its database name
        ]
        return subprocess.run(command, capture_output=True, text=True, check=True, cwd=workdir).stdout

    # As for the app: warm-up pairs from the far end of the pair space, the measured run from the
    # start, and only the measured run's rows counted.
    pgbench(args.warmup, pair_count(args) // 2, log=False)
    analyze_written_tables(url)
    before = count_rows(url)
    output = pgbench(args.duration, 0, log=True)
    after = count_rows(url)
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", output).group(1))
    failed = int(re.search(r"number of failed transactions: (\d+)", output).group(1))
    latencies = sorted(
        int(line.split()[2]) / 1000.0  # microseconds -> ms
        for path in workdir.glob("pgbench.*")
        for line in path.read_text().splitlines()
    )
    return {
        "tps": tps,
        "failed": failed,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "rows": {table: after[table] - before[table] for table in after},
    }


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p / 100))]
