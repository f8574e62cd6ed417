"""The event loop's pool of async-mode connections (astegni/core/async_pg.py): rows as dicts, statements
prepared once per connection, and every failure a 503 or the statement's own error, with the
connection reused when it can serve again and replaced when it cannot."""

from __future__ import annotations

import asyncio
import contextlib
import time
from unittest.mock import ANY

import psycopg2
import pytest
import uvloop

from astegni.core.async_pg import Watched
from astegni.core.database import Admission
from astegni.core.errors import ServiceUnavailable
from astegni.core.queries import Query
from astegni.core.statements import StatementPool
from tests.frozen_proxy import frozen_proxy
from tests.pg import end_sessions
from tests.support.live import free_port
from tests.support.polling import eventually_async

APP_NAME = "astegni-statements-test"
SLEEP = Query("test_sleep", "SELECT pg_backend_pid() AS pid, true AS slept FROM pg_sleep(%(seconds)s)")
LENGTH = Query("test_length", "SELECT length(%(text)s) AS n")
DIVIDE = Query("test_divide", "SELECT 1 / %(divisor)s AS quotient")
LAST_QUERY = "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"


def pool(db_url: str, size: int = 2, wait_seconds: float = 1.0, **overrides) -> StatementPool:
    settings = {"application_name": APP_NAME} | overrides
    return StatementPool(db_url, Admission(size, wait_seconds), **settings)


def admin(db_url: str, sql: str) -> list[tuple]:
    with contextlib.closing(psycopg2.connect(db_url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, (APP_NAME,))
            return cur.fetchall()


def backends(db_url: str) -> list[tuple[int, str]]:
    return admin(
        db_url,
        "SELECT pid, state FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = %s",
    )


def sleeping(db_url: str) -> int:
    """How many of the pool's connections are inside pg_sleep now."""
    return len(
        admin(
            db_url,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s AND wait_event = 'PgSleep'",
        )
    )


def terminate_all(db_url: str) -> None:
    end_sessions(db_url, APP_NAME)


def run(statements: StatementPool, work):
    """work() on an event loop of its own; the pool closed afterwards, whatever happened."""
    try:
        return asyncio.run(work())
    finally:
        statements.close()


def test_rows_come_back_as_dicts_and_a_statement_is_prepared_once_per_connection(db_url):
    statements = pool(db_url, size=1)

    async def work():
        first = await statements.fetch_one(SLEEP, {"seconds": 0})
        second = await statements.fetch_one(SLEEP, {"seconds": 0})
        # The same connection, back from the idle list; a second PREPARE on it would have failed
        # ("prepared statement already exists").
        assert second["pid"] == first["pid"]
        assert backends(db_url) == [(first["pid"], "idle")]
        # The last statement it ran was an EXECUTE of the statement it prepared.
        assert admin(db_url, LAST_QUERY) == [("EXECUTE test_sleep (0)",)]
        return first

    assert run(statements, work) == {"pid": ANY, "slept": True}
    assert backends(db_url) == []


def test_an_error_in_the_statement_is_raised_and_the_connection_serves_again(db_url):
    statements = pool(db_url, size=1)

    async def work():
        pid = (await statements.fetch_one(SLEEP, {"seconds": 0}))["pid"]
        with pytest.raises(psycopg2.errors.DivisionByZero):
            await statements.fetch_one(DIVIDE, {"divisor": 0})
        assert await statements.fetch_one(DIVIDE, {"divisor": 1}) == {"quotient": 1}
        assert backends(db_url) == [(pid, "idle")]  # the same one connection throughout

    run(statements, work)


def test_a_statement_timeout_is_503_and_the_connection_serves_again(db_url):
    statements = pool(db_url, size=1, statement_timeout_ms=200)

    async def work():
        pid = (await statements.fetch_one(SLEEP, {"seconds": 0}))["pid"]
        with pytest.raises(ServiceUnavailable) as timed_out:
            await statements.fetch_one(SLEEP, {"seconds": 5})
        assert timed_out.value.detail == "Database timed out"
        assert timed_out.value.headers == {"Retry-After": "1"}
        return pid, (await statements.fetch_one(SLEEP, {"seconds": 0}))["pid"]

    before, after = run(statements, work)
    assert before == after


def test_a_full_pool_answers_503_after_the_wait_and_opens_no_more_connections(db_url):
    statements = pool(db_url, size=2, wait_seconds=0.2)

    async def work():
        slow = [asyncio.create_task(statements.fetch_one(SLEEP, {"seconds": 1})) for _ in range(2)]
        await eventually_async(lambda: sleeping(db_url) == 2, 5)
        with pytest.raises(ServiceUnavailable) as busy:
            await statements.fetch_one(SLEEP, {"seconds": 0})
        assert busy.value.detail == "Server busy, try again"
        assert len(backends(db_url)) == 2
        await asyncio.gather(*slow)
        assert (await statements.fetch_one(SLEEP, {"seconds": 0}))["slept"] is True
        assert statements.idle_count() == 2

    run(statements, work)


def test_connections_ended_by_the_server_while_idle_are_dropped_at_once(db_url):
    statements = pool(db_url, size=2)

    async def work():
        first = await asyncio.gather(*(statements.fetch_one(SLEEP, {"seconds": 0.1}) for _ in range(2)))
        assert statements.idle_count() == 2
        terminate_all(db_url)  # as a PostgreSQL restart does to idle connections
        # The loop hears the server go; nothing asks.
        await eventually_async(lambda: statements.idle_count() == 0, 5)
        again = await statements.fetch_one(SLEEP, {"seconds": 0})  # no error: a fresh connection
        assert statements.idle_count() == 1
        return {row["pid"] for row in first}, again["pid"]

    old, new = run(statements, work)
    assert len(old) == 2 and new not in old


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_one_connection_serves_statement_after_statement_on_either_loop(db_url, loop):
    """Its socket stays watched between statements: neither a reply noticed late (asyncio reports
    readiness before the task that reads it runs) nor the quiet in between drops it."""
    statements = pool(db_url, size=1)

    async def work():
        pids = {(await statements.fetch_one(SLEEP, {"seconds": 0}))["pid"] for _ in range(50)}
        await asyncio.sleep(0.1)  # a quiet spell on purpose: the connection must outlive it
        pids.add((await statements.fetch_one(SLEEP, {"seconds": 0}))["pid"])
        return pids

    factory = uvloop.new_event_loop if loop == "uvloop" else None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            assert len(runner.run(work())) == 1
    finally:
        statements.close()


def test_a_statement_larger_than_the_socket_buffer_goes_out_whole(db_url):
    statements = pool(db_url, size=1)
    big = "x" * 20_000_000

    async def work():
        return await statements.fetch_one(LENGTH, {"text": big})

    assert run(statements, work) == {"n": len(big)}


def test_a_connection_lost_mid_statement_is_503_without_a_retry(db_url):
    statements = pool(db_url, size=2)

    async def work():
        running = asyncio.create_task(statements.fetch_one(SLEEP, {"seconds": 5}))
        await eventually_async(lambda: sleeping(db_url) == 1, 5)
        terminate_all(db_url)
        with pytest.raises(ServiceUnavailable) as lost:
            await running
        assert lost.value.detail == "Database unavailable"
        assert statements.idle_count() == 0
        return await statements.fetch_one(SLEEP, {"seconds": 0})

    assert run(statements, work)["slept"] is True


def test_a_cancelled_statement_does_not_leave_its_connection_in_the_pool(db_url):
    statements = pool(db_url, size=1)

    async def work():
        running = asyncio.create_task(statements.fetch_one(SLEEP, {"seconds": 5}))
        await eventually_async(lambda: sleeping(db_url) == 1, 5)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert statements.idle_count() == 0  # its statement may still be running: closed
        return await statements.fetch_one(SLEEP, {"seconds": 0})

    assert run(statements, work)["slept"] is True


def test_an_unreachable_database_is_503():
    statements = StatementPool(
        f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", Admission(2, 1.0), connect_timeout=2
    )

    async def work():
        with pytest.raises(ServiceUnavailable) as unavailable:
            await statements.fetch_one(SLEEP, {"seconds": 0})
        return unavailable.value

    error = run(statements, work)
    assert error.detail == "Database unavailable"
    assert error.headers == {"Retry-After": "2"}


def test_a_server_gone_silent_is_503_once_the_reply_timeout_passes(db_url):
    """No error and no FIN, as from a dead host: statement_timeout cannot fire, so the pool's own
    bound does, drops the connection, and the next statement gets a fresh one."""
    with frozen_proxy(db_url) as proxy:
        statements = pool(proxy.url, size=1, statement_timeout_ms=200, connect_timeout=1)

        async def work():
            await statements.fetch_one(SLEEP, {"seconds": 0})
            proxy.frozen.set()
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable) as silent:
                await statements.fetch_one(SLEEP, {"seconds": 0})
            waited = time.monotonic() - started
            assert silent.value.detail == "Database timed out"
            assert statements.idle_count() == 0
            proxy.frozen.clear()
            return waited, await statements.fetch_one(SLEEP, {"seconds": 0})

        waited, row = run(statements, work)
    assert 1.0 <= waited < 3 and row["slept"] is True


def test_closing_a_watched_connection_twice_leaves_the_next_owner_of_its_number_alone(db_url):
    async def scenario() -> tuple:
        first = await Watched.connect(db_url, Watched.close_if_ended)
        first.close()
        second = await Watched.connect(db_url, Watched.close_if_ended)
        assert second.fd == first.fd  # the lowest free number: the one just freed
        first.close()  # must not take the reader away from second
        try:
            async with asyncio.timeout(2):
                return await second.run("SELECT 1")
        finally:
            second.close()

    assert asyncio.run(scenario()) == (1,)
