"""The PostgreSQL server the tests use, and databases made and dropped on it.

TEST_DATABASE_URL names a server (and a database to connect to for admin work); without it the
embedded server under .data/test-pg is started. Every database made here is named
astegni_test_*, and only those that this run made are dropped.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql

from astegni.core.schema import apply_schema
from astegni.core.settings import DATA_DIR


def server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    from astegni.core.embedded import start_embedded_postgres

    return start_embedded_postgres(DATA_DIR / "test-pg")


def with_database(url: str, dbname: str) -> str:
    """url with its database replaced (works for host URLs and Unix-socket URLs alike)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def admin_connect(url: str):
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def end_sessions(url: str, application_name: str) -> int:
    """Terminate the sessions of application_name on url's database, as a PostgreSQL restart
    ends them; how many there were."""
    with contextlib.closing(admin_connect(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            (application_name,),
        )
        return cur.rowcount


def new_name(prefix: str = "astegni_test") -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def create_database(url: str, name: str, template: str | None = None) -> str:
    conn = admin_connect(url)
    try:
        with conn.cursor() as cur:
            if template:
                cur.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
            else:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return with_database(url, name)


def apply_schema_at(url: str, **kwargs) -> bool:
    """apply_schema() on the database at url, as the app's start-up runs it; whether it changed
    anything."""
    conn = psycopg2.connect(url)
    try:
        return apply_schema(conn, **kwargs)
    finally:
        conn.close()


@contextlib.contextmanager
def scratch_database(url: str, template: str | None = None) -> Iterator[str]:
    """A new database on the server at url (a clone of template), dropped afterwards."""
    name = new_name()
    database_url = create_database(url, name, template=template)
    try:
        yield database_url
    finally:
        drop_database(url, name)


def drop_database(url: str, name: str) -> None:
    assert name.startswith(("astegni_test", "astegni_tmpl", "astegni_bench")), name
    conn = admin_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()
