"""Fixtures: a real PostgreSQL, a database cloned from a schema template per test, the app."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg2
import pytest
from fastapi.testclient import TestClient

from astegni.db import Database
from astegni.schema import apply_schema
from astegni.settings import Settings
from tests import pg
from tests.factories import Factory
from tests.throwaway_pg import ThrowawayServer

PROJECT_DIR = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
# Where the servers of tests that do not look at email write it (never the developer's .data/).
TEST_OUTBOX_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / "astegni-test-outbox"


@pytest.fixture(scope="session")
def pg_url() -> str:
    return pg.server_url()


@pytest.fixture(scope="session")
def template_db(pg_url: str) -> Iterator[str]:
    """A database holding the schema, built once per run and cloned by every test."""
    name = pg.new_name("astegni_tmpl")
    url = pg.create_database(pg_url, name)
    conn = psycopg2.connect(url)
    try:
        apply_schema(conn)
    finally:
        conn.close()
    yield name
    pg.drop_database(pg_url, name)


@pytest.fixture
def db_url(pg_url: str, template_db: str) -> Iterator[str]:
    with pg.scratch_database(pg_url, template_db) as url:
        yield url


def make_settings(db_url: str, **overrides) -> Settings:
    values = {
        "database_url": db_url,
        "secret_key": TEST_SECRET,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 64,
        "request_rate_per_minute": 0,
        # Tests make many users from one address; the tests of these limits set them.
        "register_rate_per_hour": 0,
        "email_outbox_dir": TEST_OUTBOX_DIR,
    } | overrides
    return Settings(**values)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url, pool_size=4)
    yield database
    database.close()


def wait_ready(client: TestClient, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise TimeoutError("app did not become ready")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    from app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture
def factory(client: TestClient, db: Database) -> Factory:
    return Factory(client, db)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(db_url: str, **extra: str) -> dict[str, str]:
    return (
        os.environ
        | {
            "DATABASE_URL": db_url,
            "SECRET_KEY": TEST_SECRET,
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_KIB": "64",
            "REQUEST_RATE_PER_MINUTE": "0",
            "REGISTER_RATE_PER_HOUR": "0",
            "EMAIL_OUTBOX_DIR": str(TEST_OUTBOX_DIR),
            "LOG_LEVEL": "warning",
        }
        | extra
    )


class LiveServer:
    """`python app.py` in a subprocess, on its own port."""

    def __init__(self, db_url: str, **env: str) -> None:
        self.port = free_port()
        self.workers = int(env.get("WORKERS", "1"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"astegni-live-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(PROJECT_DIR / "app.py")],
            cwd=PROJECT_DIR,
            env=server_env(db_url, PORT=str(self.port), **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # no caller holds it yet to stop it
            raise

    def wait_ready(self, timeout: float = 30) -> None:
        """Until every worker is ready. Each new connection may land on any worker, and one still
        applying its start-up answers 503: with several workers, ask many times in a row."""
        needed = 1 if self.workers == 1 else 15 * self.workers
        deadline = time.monotonic() + timeout
        streak = 0
        while streak < needed:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server not ready:\n{self.log_path.read_text()}")
            try:
                response = httpx.get(f"{self.url}/readyz", headers={"Connection": "close"}, timeout=1)
                ready = response.status_code == 200
            except httpx.HTTPError:
                ready = False
            streak = streak + 1 if ready else 0
            if not ready:
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@contextlib.contextmanager
def live_servers(db_url: str, *envs: dict[str, str]) -> Iterator[list[LiveServer]]:
    """Several `python app.py` on one database (one per env), all stopped afterwards."""
    servers: list[LiveServer] = []
    try:
        for env in envs:
            servers.append(LiveServer(db_url, **env))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def shared_db(pg_url: str, template_db: str) -> Iterator[str]:
    """One database for a module whose tests share slow-to-start servers."""
    with pg.scratch_database(pg_url, template_db) as url:
        yield url


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayServer]:
    """A PostgreSQL of the module's own, which its fault tests may stop and restart."""
    server = ThrowawayServer(tmp_path_factory.mktemp("own-pg") / "pg")
    yield server
    server.close()


@pytest.fixture
def live_server(db_url: str) -> Iterator[LiveServer]:
    server = LiveServer(db_url)
    yield server
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Playwright's sync API keeps an event loop running on the main thread for the rest of the
    # session once it starts, and asyncio.run() refuses to start under it: browser tests go last.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
