"""The database boundary (astegni/core/database.py): events leave after the commit and only then,
in order, from a transaction or a single statement; one admission rule for both ways in; query
names mean one query in the whole service."""

from __future__ import annotations

import asyncio
import json

import pytest

from astegni.core import events
from astegni.core.database import Database
from astegni.core.errors import ServiceUnavailable
from astegni.core.queries import SQL_DIR, DuplicateQueryName, Queries, Query
from tests.support import notify
from tests.support.polling import eventually_async


def received_json(conn, expected: int, wait: float = 5) -> list[dict]:
    return [json.loads(payload) for payload in notify.received(conn, expected, wait)]


def publish(cur, n: int) -> None:
    events.publish(cur, "test.event", [1], {"n": n})


def test_events_leave_after_the_commit_in_the_order_they_were_queued(db, db_url):
    with notify.listening(db_url) as listener:
        with db.transaction() as cur:
            for n in range(3):
                publish(cur, n)
            assert received_json(listener, 1, wait=0.3) == []  # not before the commit
        assert [e["data"]["n"] for e in received_json(listener, 3)] == [0, 1, 2]


def test_a_rolled_back_transaction_sends_nothing(db, db_url):
    def fails(cur):
        publish(cur, 1)
        raise RuntimeError("after the event was queued")

    with notify.listening(db_url) as listener:
        with pytest.raises(RuntimeError):
            db.call(fails)
        db.call(publish, 2)  # the same pooled connection: nothing left over from the failure
        assert [e["data"]["n"] for e in received_json(listener, 2, wait=1)] == [2]


def test_a_transaction_on_a_worker_thread_hands_its_events_to_the_running_sender(db, db_url):
    async def work():
        sender = asyncio.create_task(db.sender.run())
        await eventually_async(lambda: db.sender.running, 5)
        try:
            await db.run(publish, 1)
            await db.run(publish, 2)
        finally:
            sender.cancel()

    with notify.listening(db_url) as listener:
        asyncio.run(work())
        assert [e["data"]["n"] for e in received_json(listener, 2)] == [1, 2]
    assert db.idle_count() == 1


def test_the_send_leaves_the_connection_as_it_was(db):
    db.call(publish, 1)
    with db.transaction() as cur:
        cur.execute("SHOW synchronous_commit")
        assert cur.fetchone()["synchronous_commit"] == "on"
    assert db.idle_count() == 1


def test_a_single_statements_events_leave_after_its_commit(db, db_url):
    query = Query(
        "test_statement_events",
        "SELECT 7 AS answer, ARRAY[realtime_event('test.event', ARRAY[1], %(data)s::jsonb)] AS events",
    )

    async def work():
        sender = asyncio.create_task(db.sender.run())
        try:
            return await db.statement(query, {"data": json.dumps({"n": 7})})
        finally:
            sender.cancel()
            db.statements.close()

    with notify.listening(db_url) as listener:
        row = asyncio.run(work())
        assert row["answer"] == 7
        assert [e["data"] for e in received_json(listener, 1)] == [{"n": 7}]


def test_transactions_and_single_statements_share_one_admission(db_url):
    db = Database(db_url, pool_size=1, wait_seconds=0.3)
    sleep = Query("test_admission_sleep", "SELECT pg_sleep(%(seconds)s) AS slept")

    async def work():
        held = asyncio.create_task(db.run(lambda cur: cur.execute("SELECT pg_sleep(1)")))
        await eventually_async(lambda: db.admission._slots is not None and db.admission._slots.locked(), 5)
        with pytest.raises(ServiceUnavailable, match="Server busy"):
            await db.statement(sleep, {"seconds": 0})
        assert await db.ping()  # every slot busy serving: the database answers, the process is ready
        await held

    try:
        asyncio.run(work())
    finally:
        db.close()


def test_every_query_name_is_defined_once_in_the_service():
    files = [p for p in sorted(SQL_DIR.rglob("*.sql")) if "-- name:" in p.read_text()]
    assert len(files) >= 8
    for path in files:
        Queries(str(path.relative_to(SQL_DIR)))  # raises on a name defined elsewhere


def test_a_query_name_defined_twice_refuses_to_load(tmp_path):
    twice = tmp_path / "twice.sql"
    twice.write_text("-- name: test_twice\nSELECT 1;\n\n-- name: test_twice\nSELECT 2;\n")
    with pytest.raises(DuplicateQueryName, match="test_twice"):
        Queries(str(twice))
    Queries("session_requests/queries.sql")  # loading one file again is no redefinition
    elsewhere = tmp_path / "elsewhere.sql"
    elsewhere.write_text("-- name: sr_create\nSELECT 1;\n")
    with pytest.raises(DuplicateQueryName, match="sr_create"):
        Queries(str(elsewhere))


def test_a_database_that_does_not_answer_is_not_ready():
    db = Database("postgresql://postgres@127.0.0.1:1/postgres", connect_timeout=1)

    async def work():
        return await db.ping()

    try:
        assert asyncio.run(work()) is False
    finally:
        db.close()
