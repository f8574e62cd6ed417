"""Faults under load, measured: PostgreSQL restarted while writes flow, down at start, the pool
held by slow queries, statements past the timeout, SIGTERM with work in flight, and a thousand
failing requests. (test_database_faults.py covers the single-request forms.)

Restarts happen on a throwaway embedded PostgreSQL started by this module, never on the shared
server. bench/faults/run.py runs the restart scenario for minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg2
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bench.faults.load import Load, lost_or_doubled, register
from tests.support.live import LiveServer, app_client
from tests.support.polling import eventually
from tests.support.remote import sql
from tests.throwaway_pg import ThrowawayServer

pytestmark = pytest.mark.slow
RECOVERY_SECONDS = 5.0


@pytest.fixture
def own_db_url(own_server: ThrowawayServer) -> Iterator[str]:
    """An empty database on the throwaway server (the app applies the schema itself)."""
    with own_server.database() as url:
        yield url


def backends(db_url: str, application_name: str = "astegni") -> list[str]:
    """The states of the app's pooled connections to this database."""
    rows = sql(
        db_url,
        "SELECT state FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
        application_name,
    )
    return [row[0] for row in rows]


@contextlib.contextmanager
def row_locked(db_url: str, statement: str, *params) -> Iterator[None]:
    """Hold row locks taken by `statement` from outside the app, so that the app's writes wait."""
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            assert cur.rowcount >= 1
            yield
        conn.rollback()
    finally:
        conn.close()


# ---------------------------------------------------------------------------- restart under load


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_restart_under_write_load_loses_no_acknowledged_write(own_server, own_db_url, mode):
    server = LiveServer(own_db_url, WORKERS="2")
    try:
        with Load(server.url, writers=4, tag=f"restart-{mode}") as load:
            load.wait_for_acks(40)  # steady state
            own_server.stop(mode)
            time.sleep(1.0)  # down for a while: requests meet a dead database, not just a blip
            own_server.start()
            back = time.monotonic()
            load.wait_for_acks(40, timeout=30)  # and steady again
        recovery = load.recovery_after(back)
        print(f"\n{mode} restart: recovery {recovery:.2f}s, statuses {dict(load.statuses())}")
        assert load.problems() == []
        assert recovery is not None and recovery <= RECOVERY_SECONDS
        assert lost_or_doubled(own_db_url, load.writers) == []
    finally:
        server.stop()


# ---------------------------------------------------------------------------- down at start


def test_down_at_start_then_recovers(own_server, own_db_url):
    own_server.stop()
    server = LiveServer(own_db_url, wait=False)  # its database is down
    try:
        eventually(
            lambda: _status(server, "/healthz") == 200, 30, what="the app to start without its database"
        )
        assert _status(server, "/readyz") == 503
        login = httpx.post(f"{server.url}/api/login", json={"email": "a@example.com", "password": "x"})
        assert login.status_code == 503 and int(login.headers["retry-after"]) >= 1
        own_server.start()
        server.wait_ready()  # the schema is applied and /readyz says 200
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert register(http, "student", "late")["user"]["id"]
    finally:
        server.stop()
    assert server.process.returncode == 0


def _status(server: LiveServer, path: str) -> int:
    try:
        return httpx.get(f"{server.url}{path}", timeout=5).status_code
    except httpx.TransportError:
        return 0


# ---------------------------------------------------------------------------- slow queries


def test_pool_held_by_slow_queries_answers_503_then_recovers(db_url):
    """Every pooled connection waits on a lock held from outside: others get 503 + Retry-After
    within the pool wait, never a 500; once the lock goes, everything (the held ones too) is 200."""
    server = LiveServer(db_url, DB_POOL_SIZE="2", DB_POOL_WAIT_SECONDS="0.3", DB_STATEMENT_TIMEOUT_MS="20000")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            users = [register(http, "student", "pool") for _ in range(2)]
        headers = [{"Authorization": f"Bearer {u['access_token']}"} for u in users]
        ids = [u["user"]["id"] for u in users]
        # The pool outside the lock: leaving the lock lets the held requests finish.
        with (
            ThreadPoolExecutor(8) as pool,
            row_locked(db_url, "SELECT 1 FROM users WHERE id = ANY(%s) FOR UPDATE", ids),
        ):
            held = [
                pool.submit(
                    httpx.post,
                    f"{server.url}/api/switch-role",
                    json={"role": "student"},
                    headers=h,
                    timeout=30,
                )
                for h in headers
            ]
            eventually(
                lambda: _lock_waiters(db_url) == 2, 30, what="both pooled connections to wait on the lock"
            )
            busy = list(
                pool.map(lambda h: httpx.get(f"{server.url}/api/me", headers=h, timeout=30), headers * 3)
            )
            assert {r.status_code for r in busy} == {503}
            assert all(r.headers["retry-after"] == "1" for r in busy)
            assert len(backends(db_url)) <= 2  # the bound held: no extra connections opened
        assert [f.result().status_code for f in held] == [200, 200]
        assert {httpx.get(f"{server.url}/api/me", headers=h).status_code for h in headers} == {200}
    finally:
        server.stop()


def _lock_waiters(db_url: str) -> int:
    rows = sql(
        db_url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name IN ('astegni', 'astegni-statements') AND wait_event_type = 'Lock'",
    )
    return rows[0][0]


def test_statement_timeout_is_503_and_the_connection_is_clean_for_reuse(db_url):
    """One pooled connection: the statement that times out is rolled back on it, and the very
    same backend (same pid) serves the next request, idle rather than in an aborted transaction."""
    with app_client(db_url, db_pool_size=1, db_statement_timeout_ms=300) as client:
        student = register(client, "student", "timeout")
        headers = {"Authorization": f"Bearer {student['access_token']}"}
        assert client.get("/api/me", headers=headers).status_code == 200
        pid_before = app_pids(db_url)
        started = time.monotonic()
        with row_locked(db_url, "SELECT 1 FROM users WHERE id = %s FOR UPDATE", student["user"]["id"]):
            timed_out = client.post("/api/switch-role", json={"role": "student"}, headers=headers)
        assert timed_out.status_code in (503, 504) and "retry-after" in timed_out.headers
        assert time.monotonic() - started < 3
        assert backends(db_url) == ["idle"]  # not "idle in transaction (aborted)"
        assert client.get("/api/me", headers=headers).status_code == 200
        assert app_pids(db_url) == pid_before
        assert client.app.state.db.idle_count() == 1


def app_pids(db_url: str) -> list[int]:
    rows = sql(
        db_url,
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'astegni'",
    )
    return sorted(row[0] for row in rows)


# ---------------------------------------------------------------------------- many failures


def test_a_thousand_failing_requests_leak_no_connection(db_url):
    """Requests failing every way (errors raised inside the transaction, validation, statement
    timeouts) leave every connection back in the pool, idle: none leaked, none left in a
    transaction. Backends are counted in pg_stat_activity by application_name."""
    with app_client(db_url, db_pool_size=4, db_statement_timeout_ms=200) as client:
        tutor, student, ghost = (register(client, role, "leak") for role in ("tutor", "student", "student"))
        tutor_headers = {"Authorization": f"Bearer {tutor['access_token']}"}
        package = client.post(
            "/api/tutor/packages", json={"name": "P", "hourly_rate": 100}, headers=tutor_headers
        )
        body = request_body(tutor["user"]["role_ids"]["tutor"], package.json()["id"])
        student_id, student = student["user"]["id"], {"Authorization": f"Bearer {student['access_token']}"}
        created = client.post("/api/session-requests", json=body, headers=student)
        assert created.status_code == 200, created.text
        request_id = created.json()["request_id"]
        assert client.post(f"/api/session-requests/{request_id}/cancel", headers=student).status_code == 200
        sql(db_url, "UPDATE users SET is_active = false WHERE id = %s RETURNING id", ghost["user"]["id"])
        ghost = {"Authorization": f"Bearer {ghost['access_token']}"}
        failing = [
            lambda: client.get("/api/view-tutor/999999", headers=student),  # 404 in the transaction
            lambda: client.post(f"/api/session-requests/{request_id}/cancel", headers=student),  # 409
            lambda: client.get("/api/tutor/packages", headers=student),  # 403
            lambda: client.get("/api/me", headers=ghost),  # 401 after the lookup
            lambda: client.post("/api/session-requests", json={"tutor_id": 0}, headers=student),  # 422
            lambda: client.post("/api/session-requests", json=body | {"package_id": 999999}, headers=student),
        ]
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda i: failing[i % len(failing)]().status_code, range(1000)))
        # And some that die of the statement timeout while a row is locked.
        with row_locked(db_url, "SELECT 1 FROM users WHERE id = %s FOR UPDATE", student_id):
            timeouts = [
                client.post("/api/switch-role", json={"role": "student"}, headers=student).status_code
                for _ in range(20)
            ]
        assert sorted(set(statuses)) == [401, 403, 404, 409, 422]
        assert set(timeouts) == {503}
        pool_db = client.app.state.db
        states = backends(db_url)
        assert len(states) <= 4 and set(states) == {"idle"}
        assert pool_db.idle_count() == len(states)  # every connection opened is back in the pool
        # The creates without an Idempotency-Key ran on the event loop's pool: the same holds.
        statements = backends(db_url, "astegni-statements")
        assert statements and set(statements) == {"idle"}
        assert client.app.state.db.statements.idle_count() == len(statements)
        assert client.get("/api/me", headers=student).status_code == 200


# ---------------------------------------------------------------------------- graceful shutdown


def request_body(tutor_id: int, package_id: int) -> dict:
    times = {"start_time": "09:00", "end_time": "10:00"}
    return {"tutor_id": tutor_id, "package_id": package_id, "days": ["Monday"]} | times


def test_sigterm_finishes_in_flight_work_and_closes_sockets_with_1001(db_url):
    """A session request blocked in its transaction when SIGTERM arrives still completes, whole
    (request, conversation, message); the open WebSocket is closed with 1001; exit code 0."""
    server = LiveServer(db_url, WORKERS="2", REQUEST_RATE_PER_MINUTE="100")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            tutor, student = register(http, "tutor", "term"), register(http, "student", "term")
            tutor_headers = {"Authorization": f"Bearer {tutor['access_token']}"}
            packages = [
                http.post(
                    "/api/tutor/packages", json={"name": f"P{i}", "hourly_rate": 100}, headers=tutor_headers
                ).json()["id"]
                for i in range(2)
            ]
        headers = {"Authorization": f"Bearer {student['access_token']}"}
        tutor_id = tutor["user"]["role_ids"]["tutor"]
        first = httpx.post(
            f"{server.url}/api/session-requests",
            json=request_body(tutor_id, packages[0]),
            headers=headers,
        )
        assert first.status_code == 200  # and the user's rate-limit row exists now
        result: dict = {}
        socket_url = f"ws://127.0.0.1:{server.port}/api/chat/ws?token={student['access_token']}"
        lock = "SELECT 1 FROM rate_limits WHERE bucket = 'session_request' AND subject = %s::text FOR UPDATE"
        with connect(socket_url, open_timeout=15) as ws, row_locked(db_url, lock, student["user"]["id"]):
            assert json.loads(ws.recv(timeout=15))["type"] == "ready"
            in_flight = threading.Thread(
                target=lambda: result.update(
                    response=httpx.post(
                        f"{server.url}/api/session-requests",
                        json=request_body(tutor_id, packages[1]),
                        headers=headers,
                        timeout=30,
                    )
                )
            )
            in_flight.start()
            eventually(
                lambda: _lock_waiters(db_url) == 1, 30, what="the create to wait inside its transaction"
            )
            os.kill(server.process.pid, signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=15)
            assert closed.value.rcvd.code == 1001
            # Shutting down, still waiting on the lock: that it has not exited only shows after a
            # while, which no poll can do sooner.
            time.sleep(0.5)
            assert server.process.poll() is None
        in_flight.join(30)
        assert result["response"].status_code == 200, result["response"].text
        request_id = result["response"].json()["request_id"]
        assert server.process.wait(30) == 0
        rows = sql(
            db_url,
            """SELECT r.status, m.message_type, c.type FROM requested_sessions r
                 JOIN chat_messages m ON (m.media_metadata->>'session_request_id')::int = r.id
                 JOIN conversations c ON c.id = m.conversation_id
                WHERE r.id = %s""",
            request_id,
        )
        assert rows == [("pending", "session_request", "direct")]
    finally:
        server.stop()
