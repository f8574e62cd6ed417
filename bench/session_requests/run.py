"""Benchmark of POST /api/session-requests against pgbench running the same SQL.

    make bench          # or: .venv/bin/python -m bench.session_requests.run [--duration 20]

1. Creates its own database (astegni_bench_*) on TEST_DATABASE_URL's server (BENCH_DATABASE_URL
   wins; else the embedded one) and seeds 10,000 students, 1,000 tutors and 3 packages each with
   generate_series (one password hash for everybody).
2. Starts the server as in production (`python app.py`, WORKERS=2 by default, uvloop/httptools,
   production settings including the rate limit) and drives the create endpoint with wrk at 50
   connections: every request is a different (student, package) pair, so nearly all succeed.
3. Stops the server, empties the tables the run wrote, and runs pgbench at the same
   concurrency sending what the endpoint sends per request: the one prepared
   session_request_create call (autocommit), then the NOTIFY of its event after the commit (the
   server's LISTEN connections are gone by then, so PostgreSQL delivers to nobody). Both walk
   the (student, package) pairs in the same order. Each warms up first on pairs of its own, then
   ANALYZEs the tables it writes, as autovacuum would have on a live database.
4. Prints requests/s, p50, p99, non-2xx counts for both, and the ratio app/pgbench; then drops its
   database.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

from astegni.core.schema import apply_schema
from astegni.core.security import access_token, hash_password
from astegni.core.settings import Settings
from tests import pg
from tests.support.live import free_port, wait_http_ready

HERE = Path(__file__).resolve().parent
PROJECT_DIR = HERE.parent.parent
SECRET = "bench-secret-key-that-is-long-enough-0123456789"
# The Debian package that brings each load tool.
PACKAGES = {"wrk": "wrk", "pgbench": "postgresql"}
EXPIRY_SECONDS = 7 * 86400
RATE_LIMIT = Settings(database_url="postgresql://x", secret_key=SECRET).request_rate_per_minute

SEED_SQL = """
INSERT INTO users (id, email, password_hash, first_name, father_name, roles, active_role)
SELECT g, 'student' || g || '@bench.astegni.test', %(hash)s, 'Student', 'Number ' || g,
       '{student}', 'student'
  FROM generate_series(1, %(students)s) g;
INSERT INTO student_profiles (id, user_id, grade_level)
SELECT g, g, 'Grade ' || (9 + g %% 4) FROM generate_series(1, %(students)s) g;
INSERT INTO users (id, email, password_hash, first_name, father_name, roles, active_role)
SELECT %(students)s + g, 'tutor' || g || '@bench.astegni.test', %(hash)s, 'Tutor', 'Number ' || g,
       '{tutor}', 'tutor'
  FROM generate_series(1, %(tutors)s) g;
INSERT INTO tutor_profiles (id, user_id, bio, subjects)
SELECT g, %(students)s + g, 'Experienced tutor', '{Mathematics,Physics}'
  FROM generate_series(1, %(tutors)s) g;
INSERT INTO tutor_packages (id, tutor_id, name, description, hourly_rate, schedule_days,
                            start_time, end_time)
SELECT g, (g - 1) / %(packages)s + 1, 'Package ' || g, 'Weekly sessions', 100 + (g %% 9) * 50,
       '{Monday,Wednesday}', '14:00', '16:00'
  FROM generate_series(1, %(tutors)s * %(packages)s) g;
SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users));
SELECT setval(pg_get_serial_sequence('student_profiles', 'id'), %(students)s);
SELECT setval(pg_get_serial_sequence('tutor_profiles', 'id'), %(tutors)s);
SELECT setval(pg_get_serial_sequence('tutor_packages', 'id'), %(tutors)s * %(packages)s);
"""

# What one request writes; emptied between the two phases so that both start alike.
WRITTEN = (
    "requested_sessions, session_request_events, chat_messages, conversation_participants, "
    "conversations, rate_limits, idempotency_keys, realtime_events, enrolled_students"
)

# What the endpoint sends, as pgbench sends it: the one statement (autocommit, as on the app's
# async connections; the same call as sr_create in astegni/session_requests/queries.sql with the
# values the wrk script sends), then the NOTIFY of its event on the same connection, committed
# without waiting for the WAL flush, as astegni/core/events.py sends it. Pairs are walked in the
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=10_000)
    parser.add_argument("--tutors", type=int, default=1_000)
    parser.add_argument("--packages", type=int, default=3, help="per tutor")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=int, default=20, help="seconds of each measured run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of load before measuring")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "2")))
    parser.add_argument("--threads", type=int, default=2, help="wrk and pgbench threads")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="py-spy the server during the measured run (.svg: flame graph, else collapsed stacks)",
    )
    args = parser.parse_args()
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (Debian: apt-get install {PACKAGES[tool]})")

    server_url = os.environ.get("BENCH_DATABASE_URL") or pg.server_url()
    name = pg.new_name("astegni_bench")
    url = pg.create_database(server_url, name)
    workdir = Path(tempfile.mkdtemp(prefix="astegni-bench-"))
    try:
        seed(url, args)
        app = run_app(url, args, workdir)
        empty_written_tables(url)
        bench = run_pgbench(url, args, workdir)
        report(args, app, bench)
    finally:
        if args.keep:
            print(f"kept database {url}")
        else:
            pg.drop_database(server_url, name)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


# ---------------------------------------------------------------------------- data


def seed(url: str, args: argparse.Namespace) -> None:
    started = time.monotonic()
    conn = psycopg2.connect(url)
    try:
        apply_schema(conn)
        settings = Settings(database_url=url, secret_key=SECRET)
        with conn, conn.cursor() as cur:
            cur.execute(
                SEED_SQL,
                {
                    "hash": hash_password(settings, "bench-password"),
                    "students": args.students,
                    "tutors": args.tutors,
                    "packages": args.packages,
                },
            )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()
    print(
        f"seeded {args.students:,} students, {args.tutors:,} tutors, "
        f"{args.tutors * args.packages:,} packages in {time.monotonic() - started:.1f}s",
        flush=True,
    )


def pair_count(args: argparse.Namespace) -> int:
    """The (student, package) pairs of the seed, which both load generators walk."""
    return args.students * args.tutors * args.packages


def empty_written_tables(url: str) -> None:
    _run(url, f"TRUNCATE {WRITTEN} CASCADE")


def analyze_written_tables(url: str) -> None:
    """Called after each warm-up, as autovacuum would have done on a live database. Without it
    every connection keeps the plans it made while these tables were empty (sequential scans,
    foreign-key checks included) and a create costs ~2.5x the PostgreSQL time; ANALYZE
    invalidates them."""
    _run(url, f"ANALYZE {WRITTEN}")


def _run(url: str, statement: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def count_rows(url: str) -> dict[str, int]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM requested_sessions), (SELECT count(*) FROM chat_messages),"
                " (SELECT count(*) FROM conversations)"
            )
            requests, messages, conversations = cur.fetchone()
    finally:
        conn.close()
    return {"requests": requests, "messages": messages, "conversations": conversations}


# ---------------------------------------------------------------------------- the app under wrk


def run_app(url: str, args: argparse.Namespace, workdir: Path) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET,
        "PORT": str(port),
        "WORKERS": str(args.workers),
        "LOG_LEVEL": "warning",
    }
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "app.py"], cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_http_ready(base, server, workdir / "server.log")
        tokens = workdir / "tokens.txt"
        settings = Settings(database_url=url, secret_key=SECRET, access_token_minutes=120)
        tokens.write_text(
            "\n".join(access_token(settings, i, "student") for i in range(1, args.students + 1))
        )
        lua_args = [str(tokens), str(args.students), str(args.packages), str(args.tutors * args.packages)]
        # Warm-up pairs come from the far end of the pair space, the measured run from the start.
        wrk(base, args, [*lua_args, str(pair_count(args) // 2), str(args.threads)], args.warmup)
        analyze_written_tables(url)
        # Rows written by the measured run only (no TRUNCATE here: the live server's background
        # DELETEs would deadlock with it).
        before = count_rows(url)
        profiler = start_profiler(server.pid, args) if args.profile else None
        cpu_before = cpu_seconds(server.pid)
        result = wrk(base, args, [*lua_args, "0", str(args.threads)], args.duration)
        result["cpu_seconds"] = cpu_seconds(server.pid) - cpu_before
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        after = count_rows(url)
        result["rows"] = {table: after[table] - before[table] for table in after}
        return result
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (the uvicorn workers), from /proc:
    what the server itself spent. Per request it rises as throughput falls (per-second work is
    spread over fewer requests), so compare it between runs of similar rate."""
    total = 0.0
    pending = [pid]
    while pending:
        proc = Path(f"/proc/{pending.pop()}")
        try:
            # Fields 14 and 15 (utime, stime) counted after the ")" that ends the command name.
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for children in proc.glob("task/*/children"):
                pending.extend(int(child) for child in children.read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended in between
    return total


def wrk(base: str, args: argparse.Namespace, lua_args: list[str], duration: int) -> dict:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "create.lua"),
        f"{base}/api/session-requests",
        "--",
        *lua_args,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH "))
    return json.loads(line[len("BENCH ") :])


def start_profiler(pid: int, args: argparse.Namespace) -> subprocess.Popen:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--gil",
            "--nonblocking",
            "--format",
            "flamegraph" if args.profile.endswith(".svg") else "raw",
            "-o",
            args.profile,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# ---------------------------------------------------------------------------- pgbench


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


# ---------------------------------------------------------------------------- output


def report(args: argparse.Namespace, app: dict, bench: dict) -> None:
    ratio = app["rps"] / bench["tps"] if bench["tps"] else float("nan")
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(app["statuses"].items()))
    print(
        f"\nPOST /api/session-requests, {args.connections} connections, {args.duration}s, "
        f"{args.workers} workers, {os.cpu_count()} CPUs"
    )
    print(
        f"  app (wrk):      {app['rps']:8.0f} requests/s   p50 {app['p50_ms']:6.1f} ms   "
        f"p99 {app['p99_ms']:6.1f} ms   non-2xx {app['non2xx']}   socket errors {app['socket_errors']}"
    )
    print(f"                  statuses {{{statuses}}}   rows {app['rows']}")
    requests = app["rps"] * app["seconds"]
    print(
        f"                  server CPU {app['cpu_seconds'] / app['seconds']:.2f} cores, "
        f"{1000 * app['cpu_seconds'] / requests:.2f} ms per request"
    )
    print(
        f"  pgbench:        {bench['tps']:8.0f} transactions/s   p50 {bench['p50_ms']:6.1f} ms   "
        f"p99 {bench['p99_ms']:6.1f} ms   failed {bench['failed']}   rows {bench['rows']}"
    )
    print(f"  ratio app/pgbench: {ratio:.2f}   (target >= 0.6; p99 target < 100 ms)")


if __name__ == "__main__":
    sys.exit(main())
