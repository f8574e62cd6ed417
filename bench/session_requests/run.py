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
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from astegni.core.security import access_token
from astegni.core.settings import Settings
from bench.session_requests.data import (
    SECRET,
    analyze_written_tables,
    count_rows,
    empty_written_tables,
    pair_count,
    seed,
)
from bench.session_requests.pgbench import run_pgbench
from tests import pg
from tests.support.live import free_port, wait_http_ready

HERE = Path(__file__).resolve().parent
PROJECT_DIR = HERE.parent.parent
# The Debian package that brings each load tool.
PACKAGES = {"wrk": "wrk", "pgbench": "postgresql"}


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
