"""A LISTEN connection on the events channel, for tests that check what the server NOTIFYs."""

from __future__ import annotations

import contextlib
import select
from collections.abc import Iterator

import psycopg2

from astegni.core.events import CHANNEL


@contextlib.contextmanager
def listening(db_url: str) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    conn.cursor().execute(f"LISTEN {CHANNEL}")
    try:
        yield conn
    finally:
        conn.close()


def received(conn: psycopg2.extensions.connection, expected: int, wait: float = 5) -> list[str]:
    """The payloads that arrived: until `expected` of them, or `wait` seconds of silence."""
    payloads: list[str] = []
    while len(payloads) < expected and select.select([conn], [], [], wait) != ([], [], []):
        conn.poll()
        while conn.notifies:
            payloads.append(conn.notifies.pop(0).payload)
    return payloads
