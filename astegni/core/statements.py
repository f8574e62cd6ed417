"""The statement pool: single statements on the event loop, for the session-request create.

Database.run costs a request a hop to a worker thread and back, the threads' fight for the GIL,
and BEGIN and COMMIT round trips. The hottest write, a session request created without an
Idempotency-Key, is one statement (a call of session_request_create); an async-mode connection
is in autocommit, so the statement is its own transaction and runs on the event loop itself.
In five alternated make bench rounds the create ran at a median 0.60 of pgbench this way against
0.48 through Database.run, with 30 % less server CPU per request (docs/benchmarks.md, 2026-11-30).
Work of more than one statement keeps to Database.run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg2

from astegni.core.async_pg import Watched
from astegni.core.database import Admission, as_unavailable, connection_options, is_broken
from astegni.core.errors import ServiceUnavailable
from astegni.core.queries import Query

log = logging.getLogger("astegni.core.statements")


class StatementPool:
    """Async-mode connections, each running one statement at a time, as many as `admission`
    lets in at once.

    The same contract as Database.run: a request waits for its turn at most as long as the
    admission says (then 503 + Retry-After), losing the database or a statement timeout is a 503,
    never a 500, and statements are server-side prepared once per connection. Unlike Database.run
    it never
    retries: a statement in autocommit may have committed when its connection broke. An idle
    connection whose server ends it (a PostgreSQL restart) is dropped as soon as the server says
    so, and replaced at the next use.
    """

    def __init__(
        self,
        dsn: str,
        admission: Admission,
        *,
        connect_timeout: float = 5.0,
        statement_timeout_ms: int = 5000,
        application_name: str = "astegni-statements",
    ) -> None:
        self.dsn = dsn
        self.admission = admission
        self.connect_timeout = connect_timeout
        self._connect_kwargs = connection_options(statement_timeout_ms, application_name)
        # PostgreSQL ends a slow statement itself; this bounds the wait for a server that went
        # silent (a dead host sends no error), after which the connection is dropped.
        self.reply_timeout = statement_timeout_ms / 1000 + connect_timeout
        self._idle: list[Watched] = []
        self._closed = False

    async def fetch_one(self, query: Query, params: dict[str, Any]) -> dict[str, Any] | None:
        """Run query (one statement, its own transaction) and return its first row."""
        async with self.admission:
            conn = await self._take()
            try:
                async with asyncio.timeout(self.reply_timeout):
                    row = await _fetch_one(conn, query, params)
            except TimeoutError as exc:
                conn.close()
                log.warning("no reply from PostgreSQL in %.0fs", self.reply_timeout)
                raise ServiceUnavailable("Database timed out", retry_after=1) from exc
            except BaseException as exc:
                broken = self._fail(conn, exc)
                unavailable = as_unavailable(exc, broken)
                if unavailable is not None:
                    raise unavailable from exc
                raise
            self._give_back(conn)
            return row

    async def _take(self) -> Watched:
        if self._idle:
            return self._idle.pop()
        try:
            # libpq's connect_timeout bounds blocking connects only.
            async with asyncio.timeout(self.connect_timeout):
                return await Watched.connect(self.dsn, self._on_idle_input, **self._connect_kwargs)
        except (psycopg2.OperationalError, TimeoutError) as exc:
            log.warning("cannot connect to PostgreSQL: %s", str(exc).strip())
            raise ServiceUnavailable("Database unavailable", retry_after=2) from exc

    def _on_idle_input(self, conn: Watched) -> None:
        if conn.close_if_ended():
            with contextlib.suppress(ValueError):
                self._idle.remove(conn)

    def _give_back(self, conn: Watched) -> None:
        # A FATAL outside the classes is_broken counts (say, 53200 out of memory) ends the
        # session too: libpq has closed the socket already.
        if self._closed or conn.closed:
            conn.close()
        else:
            self._idle.append(conn)

    def _fail(self, conn: Watched, exc: BaseException) -> bool:
        """Put conn back after exc if it can serve again; True when the database is lost."""
        if isinstance(exc, psycopg2.Error):
            if not is_broken(exc, conn.pg):
                # Failed in the server (an error, a timeout): an autocommit connection is ready
                # for the next statement.
                self._give_back(conn)
                return False
            conn.close()
            self.close_idle()  # their server is probably gone too
            return True
        # Anything else (a cancelled await) may have left a statement in flight on conn.
        conn.close()
        return False

    def close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    def idle_count(self) -> int:
        return len(self._idle)

    def close(self) -> None:
        self._closed = True
        self.close_idle()


async def _fetch_one(conn: Watched, query: Query, params: dict[str, Any]) -> dict[str, Any] | None:
    if query.name not in conn.pg.prepared:
        await conn.run(query.prepare_sql)
        conn.pg.prepared.add(query.name)
    return await conn.run(query.execute_sql, params)
