"""PostgreSQL restarted, down, slow or out of connections: the API answers 200 or 503, never 500.

Restarts happen on a throwaway embedded server started by this module, never on the shared one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg2
import pytest
from fastapi.testclient import TestClient

from tests import pg
from tests.support.factories import PASSWORD
from tests.support.live import LiveServer, app_client, make_settings
from tests.support.polling import eventually
from tests.support.remote import sql
from tests.throwaway_pg import ThrowawayServer


@pytest.fixture
def own_db_url(own_server: ThrowawayServer) -> Iterator[str]:
    with own_server.database() as url:
        pg.apply_schema_at(url)
        yield url


def register(client) -> dict[str, str]:
    body = {
        "email": f"fault-{time.monotonic_ns()}@example.com",
        "password": PASSWORD,
        "first_name": "Hanna",
        "father_name": "Tesfaye",
        "roles": ["student", "parent"],
    }
    response = client.post("/api/register", json=body)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def in_parallel(count: int, call) -> list:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: call(), range(count)))


# A valid create body for a tutor and package that do not exist: 404 from the database.
UNKNOWN_PACKAGE = {
    "tutor_id": 999999,
    "package_id": 999999,
    "days": ["Monday"],
    "start_time": "09:00",
    "end_time": "10:00",
}


# ------------------------------------------------------------------ restart


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_restart_costs_no_request(own_server, own_db_url, mode):
    with app_client(own_db_url, db_pool_size=4) as client:
        headers = register(client)
        # Fill the pool with idle connections, all of which the restart will break.
        assert {r.status_code for r in in_parallel(8, lambda: client.get("/api/me", headers=headers))} == {
            200
        }
        # And the event loop's connections, which serve creates without an Idempotency-Key.
        assert client.post("/api/session-requests", json=UNKNOWN_PACKAGE, headers=headers).status_code == 404
        own_server.stop(mode)
        own_server.start()
        # The first request meets a dead connection, drops its idle siblings and retries on a
        # fresh one: the restart is invisible.
        assert client.get("/api/me", headers=headers).status_code == 200
        # A create is never retried (its statement may have committed), but its idle connection
        # is seen to be dead before use and replaced.
        assert client.post("/api/session-requests", json=UNKNOWN_PACKAGE, headers=headers).status_code == 404
        statuses = in_parallel(12, lambda: client.get("/api/my-roles", headers=headers).status_code)
        assert set(statuses) == {200}
        switched = client.post("/api/switch-role", json={"role": "parent"}, headers=headers)
        assert switched.status_code == 200


@pytest.mark.slow
def test_while_the_database_is_down_the_api_is_503_and_health_stays_200(own_server, own_db_url):
    with app_client(own_db_url) as client:
        headers = register(client)
        own_server.stop()
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json() == {"status": "unavailable"}
        for response in (
            client.get("/api/me", headers=headers),
            client.get("/api/parent/children", headers=headers),
            client.post("/api/session-requests", json=UNKNOWN_PACKAGE, headers=headers),
            client.post("/api/login", json={"email": "a@example.com", "password": PASSWORD}),
            client.post(
                "/api/register",
                json={
                    "email": "new@example.com",
                    "password": PASSWORD,
                    "first_name": "A",
                    "father_name": "B",
                    "roles": ["student"],
                },
            ),
        ):
            assert response.status_code == 503, (response.request.url, response.text)
            assert response.json() == {"detail": "Database unavailable", "code": "service_unavailable"}
            assert int(response.headers["retry-after"]) >= 1
        own_server.start()
        eventually(lambda: client.get("/readyz").status_code == 200, 30, what="readyz after restart")
        assert client.get("/api/me", headers=headers).status_code == 200


@pytest.mark.slow
def test_a_live_server_rides_out_a_restart(own_server, own_db_url):
    server = LiveServer(own_db_url)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            body = {
                "email": "live@example.com",
                "password": PASSWORD,
                "first_name": "Dawit",
                "father_name": "Haile",
                "roles": ["tutor"],
            }
            headers = {
                "Authorization": f"Bearer {http.post('/api/register', json=body).json()['access_token']}"
            }
            statuses: list[int] = []
            stop = threading.Event()

            def hammer() -> None:
                while not stop.is_set():
                    statuses.append(http.get("/api/tutor/packages", headers=headers).status_code)

            workers = [threading.Thread(target=hammer) for _ in range(3)]
            for worker in workers:
                worker.start()
            eventually(lambda: len(statuses) >= 10, 30, what="requests before the restart")
            own_server.stop()
            eventually(lambda: http.get("/readyz").status_code == 503, 30, what="readyz 503 while down")
            own_server.start()
            eventually(lambda: http.get("/readyz").status_code == 200, 30, what="readyz 200 after restart")
            seen = len(statuses)
            eventually(lambda: len(statuses) >= seen + 10, 30, what="requests after the restart")
            stop.set()
            for worker in workers:
                worker.join()
        assert set(statuses) <= {200, 503}, statuses
        assert statuses[-1] == 200
    finally:
        server.stop()


# ------------------------------------------------------------------ slow or busy database


@contextlib.contextmanager
def user_row_locked(db_url: str, user_id: int) -> Iterator[None]:
    """Hold a lock on the user's row from outside the app, so that writes to it wait."""
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user_id,))
            yield
        conn.rollback()
    finally:
        conn.close()


def waiting_on_locks(db_url: str) -> int:
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return sql(db_url, query)[0][0]


def test_an_exhausted_pool_answers_503_with_retry_after(db_url):
    with app_client(db_url, db_pool_size=1, db_pool_wait_seconds=0.2) as client:
        headers = register(client)
        user_id = client.get("/api/me", headers=headers).json()["id"]
        # The lock is released (inner block) before the pool waits for the blocked request.
        with ThreadPoolExecutor(1) as pool, user_row_locked(db_url, user_id):
            # This request takes the only slot and waits on the lock.
            blocked = pool.submit(client.post, "/api/switch-role", json={"role": "parent"}, headers=headers)
            eventually(lambda: waiting_on_locks(db_url) == 1, 30, what="the request to wait on the lock")
            busy = client.get("/api/me", headers=headers)
            assert busy.status_code == 503
            assert busy.json() == {"detail": "Server busy, try again", "code": "service_unavailable"}
            assert busy.headers["retry-after"] == "1"
        assert blocked.result().status_code == 200, (
            blocked.result().text
        )  # went through once the lock was released
        assert blocked.result().json()["active_role"] == "parent"
        assert client.get("/api/me", headers=headers).status_code == 200


def test_a_statement_timeout_is_503_and_rolls_back(db_url):
    with app_client(db_url, db_statement_timeout_ms=200) as client:
        headers = register(client)
        user_id = client.get("/api/me", headers=headers).json()["id"]
        with user_row_locked(db_url, user_id):
            response = client.post("/api/switch-role", json={"role": "parent"}, headers=headers)
        assert response.status_code == 503
        assert response.json() == {"detail": "Database timed out", "code": "service_unavailable"}
        assert "retry-after" in response.headers
        with contextlib.closing(psycopg2.connect(db_url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT active_role FROM users WHERE id = %s", (user_id,))
            assert cur.fetchone()[0] == "student"


@pytest.mark.slow
def test_the_app_starts_while_the_database_is_down_and_becomes_ready(own_server, own_db_url):
    own_server.stop()
    from app import create_app

    with TestClient(create_app(make_settings(own_db_url)), raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        # Until the schema is confirmed, API calls are 503 too (not a 500 on a missing table).
        starting = client.post("/api/login", json={"email": "a@example.com", "password": PASSWORD})
        assert starting.status_code == 503 and "retry-after" in starting.headers
        own_server.start()
        eventually(
            lambda: client.get("/readyz").status_code == 200, 30, what="readyz once the database is up"
        )
        register(client)
