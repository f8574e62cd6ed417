"""make test-deploy: the production topology on this machine, checked through nginx only.

    .venv/bin/python -m deploy.test_deploy [--writers 6] [--period 1.0]

Starts PgBouncer (session mode), three `python app.py` instances and nginx from deploy/'s
templates on a fresh database (TEST_DATABASE_URL's server, else 127.0.0.1:5432 as postgres),
then checks: static pages from nginx with gzip and the proxy's size limits; the QA script;
a WebSocket receiving messages written through each instance; and a steady load of
idempotent creates and chat sends while one instance is killed with SIGKILL and another
restarted gracefully. Clients retry 502/503 with the same Idempotency-Key or client_message_id,
WebSocket clients reconnect and catch up with after_id; afterwards the database must hold every
acknowledged write exactly once and nothing else, and every client must have been shown every
message of its conversations once. Prints the figures; exits 1 on any problem. Everything is
torn down, and the database dropped, however it ends.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
import threading
import time

import httpx
import psycopg2

from bench.faults.load import Writer, lost_or_doubled, percentile, register
from deploy.checks import check_limits, check_qa_script, check_static, check_ws_across_instances
from deploy.cluster import Cluster
from deploy.watcher import Watcher

RECOVERY_SECONDS = 10.0


class PacedWriter(Writer):
    """A bench writer at a fixed rate (one cycle per `period` seconds), retrying what a proxy in
    front of a failing instance answers."""

    retry_statuses = (502, 503, 504)

    def __init__(self, *args: object, period: float) -> None:
        super().__init__(*args)
        self.period = period

    def run(self) -> None:
        try:
            tick = time.monotonic()
            while not self.stop.is_set():
                self.cycle()
                tick += self.period
                self.stop.wait(max(0.0, tick - time.monotonic()))
        finally:
            self.http.close()


def shown_everything(direct_url: str, watcher: Watcher, user_id: int, seconds: float = 20) -> list[str]:
    """Wait until the watcher was shown every message of its user's conversations; then what is
    missing, extra or doubled."""
    conn = psycopg2.connect(direct_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT m.id FROM chat_messages m"
                " JOIN conversation_participants p ON p.conversation_id = m.conversation_id"
                " WHERE p.user_id = %s",
                (user_id,),
            )
            expected = {row[0] for row in cur.fetchall()}
    finally:
        conn.close()
    deadline = time.monotonic() + seconds
    while not expected <= watcher.shown and time.monotonic() < deadline:
        time.sleep(0.1)
    found = list(watcher.problems)
    if expected - watcher.shown:
        found.append(f"user {user_id}: never shown {sorted(expected - watcher.shown)[:10]}")
    if watcher.shown - expected:
        found.append(f"user {user_id}: shown messages not in the database {sorted(watcher.shown - expected)}")
    if watcher.duplicates:
        found.append(f"user {user_id}: the same event twice on one socket: {watcher.duplicates[:10]}")
    return found


def failures_between(writers: list[Writer], start: float, end: float) -> list[float]:
    return sorted(t for w in writers for t in w.books.failures if start <= t < end)


def load_with_faults(cluster: Cluster, writers_count: int, period: float) -> list[str]:
    problems: list[str] = []
    stop_writers, stop_watchers = threading.Event(), threading.Event()
    with httpx.Client(base_url=cluster.url, timeout=30) as http:
        tutor = register(http, "tutor", "deploy")
        package = http.post(
            "/api/tutor/packages",
            json={"name": "Deploy package", "hourly_rate": 250},
            headers={"Authorization": f"Bearer {tutor['access_token']}"},
        )
        assert package.status_code == 201, package.text
        students = [register(http, "student", "deploy") for _ in range(writers_count)]
    tutor_id = tutor["user"]["role_ids"]["tutor"]
    writers = [
        PacedWriter(
            cluster.url, s["access_token"], s["user"]["id"], tutor_id, package.json()["id"], stop_writers,
            period=period,
        )
        for s in students
    ]  # fmt: skip
    # Three sockets opened one after another: nginx's round robin puts one on each instance, so
    # the kill and the graceful restart below each take at least one socket down.
    watched = [tutor, tutor, students[0]]
    watchers = [Watcher(cluster.url, user["access_token"], stop_watchers) for user in watched]
    for watcher in watchers:
        watcher.open()
    for thread in (*watchers, *writers):
        thread.start()

    killed, restarted = cluster.instances[1], cluster.instances[2]
    time.sleep(6)
    killed_at = time.monotonic()
    killed.kill()  # SIGKILL: in-flight requests are lost on the wire
    time.sleep(3)  # systemd's RestartSec= before Restart=on-failure starts it again
    killed.start()
    killed.wait_ready()
    back_at = time.monotonic()
    time.sleep(5)
    drained_at = time.monotonic()
    restarted.terminate()  # systemctl restart: SIGTERM, wait for the exit, start, wait for /readyz
    restarted.start()
    restarted.wait_ready()
    ready_at = time.monotonic()
    time.sleep(6)
    stop_writers.set()
    for writer in writers:
        writer.join(90)
    ended_at = time.monotonic()

    for watcher, user in zip(watchers, watched, strict=True):
        problems += shown_everything(cluster.direct_url, watcher, user["user"]["id"])
    stop_watchers.set()
    for watcher in watchers:
        watcher.join(10)

    statuses: collections.Counter = collections.Counter()
    for writer in writers:
        statuses += writer.books.statuses
        problems += writer.books.unexpected
    transport = sum(w.books.transport_errors for w in writers)
    bad = {status: n for status, n in statuses.items() if status not in (200, 201, 409, 502, 503, 504)}
    if bad:
        problems.append(f"statuses other than 2xx, 409 (a retried cancel) and 502/503/504: {bad}")
    problems += lost_or_doubled(cluster.direct_url, writers)

    after_kill = failures_between(writers, killed_at, drained_at)
    after_term = failures_between(writers, drained_at, ended_at)
    recovery = (after_kill[-1] - killed_at) if after_kill else 0.0
    if recovery > RECOVERY_SECONDS:
        problems.append(f"failures went on {recovery:.1f}s after the kill")
    closes = [code for watcher in watchers for code in watcher.closes]
    if len(closes) < 2:
        problems.append(f"expected the kill and the restart to close sockets, saw closes {closes}")
    latencies = [x for w in writers for x in w.books.latencies]
    creates = sum(len(w.books.creates) for w in writers)
    messages = sum(len(w.books.messages) for w in writers)
    print(
        f"load: {writers_count} writers, one cycle each per {period:g}s, for {ended_at - killed_at + 6:.0f}s"
    )
    print(f"  requests answered: {sum(statuses.values())}; by status {dict(sorted(statuses.items()))}")
    print(f"  transport errors (connection lost mid-request): {transport}")
    print(f"  acknowledged: {creates} session requests, {messages} chat messages")
    p50, p99 = (percentile(latencies, p) * 1000 for p in (50, 99))
    print(f"  latency p50 {p50:.1f} ms, p99 {p99:.1f} ms (failed attempts included)")
    print(
        f"  SIGKILL: {len(after_kill)} failed attempts, the last {recovery:.2f}s after the kill;"
        f" restarted and ready {back_at - killed_at:.1f}s after it"
    )
    print(
        f"  graceful restart: {len(after_term)} failed attempts; SIGTERM to ready again"
        f" {ready_at - drained_at:.1f}s"
    )
    shown = sum(len(watcher.shown) for watcher in watchers)
    print(f"  WebSockets: {len(watchers)} clients, {len(closes)} closes {closes}, {shown} messages shown")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--period", type=float, default=1.0, help="seconds per writer cycle")
    args = parser.parse_args()
    started = time.monotonic()
    problems: list[str] = []
    cluster = Cluster(instances=3)
    try:
        print(f"nginx {cluster.url} -> instances {[i.port for i in cluster.instances]}, "
              f"PgBouncer :{cluster.pgbouncer_port}, database {cluster.db_name}")  # fmt: skip
        for check in (check_static, check_limits, check_qa_script, check_ws_across_instances):
            found = check(cluster)
            print(f"{'✓' if not found else '✗'} {check.__doc__.splitlines()[0]}")
            problems += found
        problems += load_with_faults(cluster, args.writers, args.period)
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(Exception):
            for instance in cluster.instances:
                print(f"--- app {instance.port}\n{instance.log_tail(15)}")
            print(f"--- nginx errors\n{cluster.log('nginx/logs/nginx-error.log')}")
    finally:
        cluster.close()
    print(f"took {time.monotonic() - started:.0f}s")
    print("✓ deploy: every acknowledged write once, nothing else" if not problems else "✗ PROBLEMS:")
    for problem in problems:
        print(f"  ✗ {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
