"""The post-commit notifier of the create (astegni/core/notifier.py): batches arrive complete and in
order, and a lost connection costs only its own batch."""

from __future__ import annotations

import asyncio
import json
import select

import psycopg2

from astegni.core.events import CHANNEL
from astegni.core.notifier import Notifier
from tests.pg import end_sessions
from tests.support.polling import eventually_async


def _listener(db_url: str):
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    conn.cursor().execute(f"LISTEN {CHANNEL}")
    return conn


def _received(conn, expected: int) -> list[str]:
    payloads: list[str] = []
    while len(payloads) < expected and select.select([conn], [], [], 5) != ([], [], []):
        conn.poll()
        while conn.notifies:
            payloads.append(conn.notifies.pop(0).payload)
    return payloads


async def _with_notifier(db_url: str, work) -> None:
    notifier = Notifier(db_url)
    task = asyncio.create_task(notifier.run())
    try:
        await work(notifier)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_concurrent_sends_all_arrive_in_order(db_url):
    listener = _listener(db_url)
    payloads = [json.dumps({"n": i, "text": "x" * 1000}) for i in range(200)]

    async def work(notifier: Notifier) -> None:
        await asyncio.gather(*(notifier.send(p) for p in payloads))

    try:
        asyncio.run(_with_notifier(db_url, work))
        assert _received(listener, len(payloads)) == payloads
    finally:
        listener.close()


def _end_notifier_session(db_url: str) -> None:
    assert end_sessions(db_url, "astegni-notifier") == 1


def test_a_lost_connection_is_reopened_for_the_next_batch(db_url):
    listener = _listener(db_url)

    async def work(notifier: Notifier) -> None:
        await notifier.send("first")
        _end_notifier_session(db_url)
        # Sent before the loop has heard the server go, its batch may fail on the dead
        # connection: logged, not raised.
        await notifier.send("maybe lost")
        await notifier.send("after")

    try:
        asyncio.run(_with_notifier(db_url, work))
        received = _received(listener, 3)
        assert received[0] == "first" and received[-1] == "after"
    finally:
        listener.close()


def test_a_connection_the_server_ended_while_idle_costs_no_event(db_url):
    listener = _listener(db_url)

    async def work(notifier: Notifier) -> None:
        await notifier.send("first")
        _end_notifier_session(db_url)
        # The loop hears the goodbye and drops the connection, before anything is sent again.
        await eventually_async(lambda: notifier._conn is None or notifier._conn.closed, 5)
        await notifier.send("kept")

    try:
        asyncio.run(_with_notifier(db_url, work))
        assert _received(listener, 2) == ["first", "kept"]
    finally:
        listener.close()


def test_notifies_commit_without_waiting_for_the_wal_flush(db_url):
    # A NOTIFY's commit holds the global notify lock; waiting for the flush there would make
    # every notifying process queue behind the disk (astegni/core/notifier.py).
    async def work(notifier: Notifier) -> None:
        await notifier.send("warm")  # opens the connection
        with notifier._conn.pg.cursor() as cur:
            cur.execute("SHOW synchronous_commit")
            await notifier._conn.reply()
            assert cur.fetchone() == ("off",)

    asyncio.run(_with_notifier(db_url, work))
