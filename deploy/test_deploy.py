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
import signal
import sys
import threading
import time

import httpx

from bench.faults.load import Writer, lost_or_doubled, percentile, register
from deploy.checks import (
    check_compose_rendered,
    check_forwarded,
    check_limits,
    check_qa_script,
    check_static,
    check_units,
    check_ws_across_instances,
)
from deploy.cluster import Cluster
from deploy.watcher import Watcher
from tests.support.remote import sql

RECOVERY_SECONDS = 10.0
TIME_LIMIT_SECONDS = 300


def _out_of_time(signum: int, frame: object) -> None:
    raise TimeoutError(f"make test-deploy ran past {TIME_LIMIT_SECONDS}s")


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


def messages_of(direct_url: str, user_id: int) -> dict[int, tuple[str, float]]:
    """Every message in the user's conversations: id -> (type, when written, epoch seconds)."""
    rows = sql(
        direct_url,
        "SELECT m.id, m.message_type, extract(epoch FROM m.created_at)::float8 FROM chat_messages m"
        " JOIN conversation_participants p ON p.conversation_id = m.conversation_id"
        " WHERE p.user_id = %s",
        user_id,
    )
    return {row[0]: (row[1], row[2]) for row in rows}


def audit_watcher(
    watcher: Watcher, user_id: int, expected: dict[int, tuple[str, float]], killed_at: float
) -> tuple[list[str], set[int], set[int]]:
    """What the stopped watcher was shown against the database: every message once, and live (by
    its socket, or by the catch-up after a reconnect). Returns the problems, and apart from them
    the one loss the app knowingly allows: a message written as its instance was killed, whose
    event is sent after the commit and dies with the process. Those are
    returned with the subset that the catch-up (one more here, as on the client's next
    reconnect) did not recover either, because a later message of the same conversation had
    moved the client's after_id past them."""
    live = set(watcher.shown)
    watcher.catch_up()
    late = set(expected) - live
    lost = {i for i in late if abs(expected[i][1] - killed_at) < 2}
    found = list(watcher.problems)
    if set(expected) - watcher.shown - lost:
        found.append(f"user {user_id}: never shown {sorted(set(expected) - watcher.shown - lost)[:10]}")
    if watcher.shown - set(expected):
        found.append(
            f"user {user_id}: shown messages not in the database {sorted(watcher.shown - set(expected))}"
        )
    if watcher.duplicates:
        found.append(f"user {user_id}: the same event twice on one socket: {watcher.duplicates[:10]}")
    for message_id in sorted(late - lost):
        found.append(f"user {user_id}: message {message_id} ({expected[message_id][0]}) not delivered live")
    return found, lost, lost - watcher.shown


def failures_between(writers: list[Writer], start: float, end: float) -> list[float]:
    return sorted(t for w in writers for t in w.books.failures if start <= t < end)


def load_with_faults(cluster: Cluster, writers_count: int, period: float, strict_events: bool) -> list[str]:
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
    killed_wall = time.time()
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

    expected = [messages_of(cluster.direct_url, user["user"]["id"]) for user in watched]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
        set(messages) <= watcher.shown for messages, watcher in zip(expected, watchers, strict=True)
    ):
        time.sleep(0.1)
    stop_watchers.set()
    for watcher in watchers:
        watcher.join(10)
    lost_events, unrecovered = 0, 0
    for watcher, user, messages in zip(watchers, watched, expected, strict=True):
        found, lost, never = audit_watcher(watcher, user["user"]["id"], messages, killed_wall)
        problems += found
        lost_events, unrecovered = lost_events + len(lost), unrecovered + len(never)
        watcher.http.close()

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
    print(
        f"  {'⚠' if lost_events else '✓'} live events lost with the killed process (sent after"
        f" their commit): {lost_events}; of those, missed by the after_id catch-up too"
        f" (a later message had moved after_id past them): {unrecovered}"
    )
    if strict_events and lost_events:
        problems.append(f"{lost_events} live events lost with the killed process (--strict-events)")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writers", type=int, default=6)
    parser.add_argument("--period", type=float, default=1.0, help="seconds per writer cycle")
    parser.add_argument(
        "--strict-events",
        action="store_true",
        help="fail also on events lost with the killed process (sent after their commit: allowed)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    problems: list[str] = []
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(TIME_LIMIT_SECONDS)  # a hang ends as a failure, still torn down by the finally
    cluster = Cluster(instances=3)
    try:
        print(f"nginx {cluster.url} -> instances {[i.port for i in cluster.instances]}, "
              f"PgBouncer :{cluster.pgbouncer_port}, database {cluster.db_name}")  # fmt: skip
        for check in (
            check_units,
            check_compose_rendered,
            check_forwarded,
            check_static,
            check_limits,
            check_qa_script,
            check_ws_across_instances,
        ):
            found = check(cluster)
            print(f"{'✓' if not found else '✗'} {check.__doc__.splitlines()[0]}")
            problems += found
        problems += load_with_faults(cluster, args.writers, args.period, args.strict_events)
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
