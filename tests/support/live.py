"""The app under test: its settings, the in-process TestClient's readiness, and real servers
(`python app.py` in a subprocess, on a free port, with one or several workers)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from jose import jwt

from astegni.core.settings import Settings
from tests.support.polling import eventually

PROJECT_DIR = Path(__file__).resolve().parents[2]
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
# Where the servers of tests that do not look at email write it (never the developer's .data/).
TEST_OUTBOX_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / "astegni-test-outbox"


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


def server_env(db_url: str, **extra: str) -> dict[str, str]:
    """make_settings() as the environment of a `python app.py`."""
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


def token(user_id: int, *, secret: str = TEST_SECRET, lifetime: int = 600, **claims) -> str:
    """A signed access token for user_id (or, through the keywords, an expired, foreign or odd one)."""
    now = int(time.time())
    body = {
        "sub": str(user_id),
        "role": "student",
        "type": "access",
        "iat": now,
        "exp": now + lifetime,
    } | claims
    return jwt.encode(body, secret, algorithm="HS256")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(client: TestClient, timeout: float = 20) -> None:
    """Until the in-process app has applied its schema (/readyz answers 200)."""
    eventually(lambda: client.get("/readyz").status_code == 200, timeout, what="the app's /readyz")


@contextlib.contextmanager
def app_client(settings: Settings | str, **overrides: Any) -> Iterator[TestClient]:
    """The app in-process, its lifespan running and its schema applied: for `settings`, or for
    make_settings(url, **overrides) given a database URL. Server errors answer 500 as they would
    to a real client."""
    from app import create_app

    if isinstance(settings, str):
        settings = make_settings(settings, **overrides)
    elif overrides:
        raise TypeError("overrides go with a database URL, not with Settings")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wait_ready(client)
        yield client


def wait_http_ready(
    base: str, process: subprocess.Popen, log: Path, timeout: float = 60, streak: int = 1
) -> None:
    """Until the server at base answers /readyz 200 `streak` times in a row, on a new connection
    each (with several workers each may land on another one, and one still applying its
    start-up answers 503). Its log in the error if it exits or never gets there."""

    def ready() -> bool:
        if process.poll() is not None:
            return True  # no use waiting: said below
        for _ in range(streak):
            try:
                response = httpx.get(f"{base}/readyz", headers={"Connection": "close"}, timeout=1)
            except httpx.HTTPError:
                return False
            if response.status_code != 200:
                return False
        return True

    try:
        eventually(ready, timeout, interval=0.1, what=f"{base}/readyz")
    except AssertionError as error:
        raise TimeoutError(f"server not ready:\n{log.read_text()}") from error
    if process.poll() is not None:
        raise RuntimeError(f"server exited:\n{log.read_text()}")


class LiveServer:
    """`python app.py` in a subprocess, on its own port; wait=False for one that is not expected
    to become ready (its database is down)."""

    def __init__(self, db_url: str, *, wait: bool = True, **env: str) -> None:
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
        if not wait:
            return
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # no caller holds it yet to stop it
            raise

    def wait_ready(self, timeout: float = 30) -> None:
        """Until every worker is ready: with several, ask many times in a row."""
        streak = 1 if self.workers == 1 else 15 * self.workers
        wait_http_ready(self.url, self.process, self.log_path, timeout, streak)

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
