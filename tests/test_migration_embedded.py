"""The bare `python migrate_conversations_to_user_based.py` (no flag, no DATABASE_URL): it
migrates the embedded database of `make run`, whether or not the app has that server running."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from astegni.core.embedded import embedded_server, stop_embedded_postgres
from tests import legacy_fixture

PROJECT_DIR = Path(__file__).resolve().parent.parent
SCRIPT = PROJECT_DIR / "migrate_conversations_to_user_based.py"

pytestmark = pytest.mark.slow


def bare_run(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["ASTEGNI_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def server_running(pgdata: Path, timeout: float = 10.0, expected: bool = True) -> bool:
    """Whether the server of pgdata runs, once it has settled on `expected` (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        running = (pgdata / "postmaster.pid").exists()
        if running == expected or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


def test_bare_command_uses_the_embedded_database(tmp_path):
    data_dir = tmp_path / "data"
    pgdata = data_dir / "pg"

    # Nothing there yet: a clear message, not an empty database created and "migrated".
    result = bare_run(data_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "✗ Migration failed: no database:" in result.stdout
    assert not pgdata.exists()

    # `make run` is up: this process holds the embedded server, as app.py main() does.
    server = embedded_server(pgdata)
    url = server.get_uri()
    legacy_fixture.create_legacy_schema(url)
    fixture = legacy_fixture.build_small(url)
    result = bare_run(data_dir, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Dry run: nothing was changed. For 37 conversations it would:" in result.stdout
    assert server_running(pgdata)  # the app's server is left running
    psycopg2.connect(url).close()
    stop_embedded_postgres(server)
    assert not server_running(pgdata, expected=False)

    # Nothing running: the script starts the server, migrates, and stops it again.
    result = bare_run(data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ 37 existing conversations migrated" in result.stdout
    assert not server_running(pgdata, expected=False)

    server = embedded_server(pgdata)
    try:
        conn = psycopg2.connect(server.get_uri())
        with conn, conn.cursor() as cur:
            cur.execute("SELECT id, sender_user_id FROM chat_messages")
            assert dict(cur.fetchall()) == fixture.senders
        conn.close()
    finally:
        stop_embedded_postgres(server)
