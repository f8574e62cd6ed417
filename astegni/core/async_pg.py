"""Async-mode psycopg2 connections driven by the asyncio event loop, and a pool of them for
single statements.

Database.run costs a request a hop to a worker thread and back, the threads' fight for the GIL,
and BEGIN and COMMIT round trips. The hottest write, a session request created without an
Idempotency-Key, is one statement (a call of session_request_create); an async-mode connection
is in autocommit, so the statement is its own transaction and runs on the event loop itself.
Five alternated make bench pairs measured the create at ~1,060 requests/s this way against ~730
through Database.run (docs/benchmarks.md, 2026-11-30). Work of more than one statement keeps to
Database.run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions

from astegni.core import events
from astegni.core.database import Admission, as_unavailable, connection_options, is_broken
from astegni.core.errors import ServiceUnavailable
from astegni.core.queries import Query

log = logging.getLogger("astegni.core.database")


async def wait(conn: Any) -> None:
    """Drive an async-mode psycopg2 connection until its current operation completes."""
    loop = asyncio.get_running_loop()
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        if state == psycopg2.extensions.POLL_READ:
            watch, unwatch = loop.add_reader, loop.remove_reader
        elif state == psycopg2.extensions.POLL_WRITE:
            watch, unwatch = loop.add_writer, loop.remove_writer
        else:
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
        ready = loop.create_future()
        fd = conn.fileno()
        watch(fd, _resolve, ready)
        try:
            await ready
        finally:
            unwatch(fd)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def connect(dsn: str, **kwargs: Any) -> Any:
    conn = psycopg2.connect(dsn, async_=True, **kwargs)
    try:
        await wait(conn)
    except BaseException:
        conn.close()
        raise
    return conn


class Watched:
    """An async-mode connection whose socket the loop watches for as long as it is open.

    Adding and removing a reader around every statement cost two epoll_ctl calls and uvloop's
    bookkeeping, 5 % of a worker's time under make bench (py-spy). Registered once, the reader
    wakes the statement in flight with its reply, and hands whatever the server sends between
    statements (a notification, or a goodbye) to `on_idle_input`.
    """

    @classmethod
    async def connect(cls, dsn: str, on_idle_input: Callable[[Watched], None], **kwargs: Any) -> Watched:
        return cls(await connect(dsn, **kwargs), on_idle_input)

    def __init__(self, conn: Any, on_idle_input: Callable[[Watched], None]) -> None:
        self.pg = conn  # the psycopg2 connection
        self.fd = conn.fileno()
        self.on_idle_input = on_idle_input
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        if self._waiter is None:
            self.on_idle_input(self)
        elif not self._waiter.done():
            self._waiter.set_result(None)

    async def run(self, sql: str, params: Any = None) -> Any:
        """One statement (its own transaction: async mode is autocommit); its first row, if it
        returns rows."""
        with self.pg.cursor() as cur:
            cur.execute(sql, params)
            await self.reply()
            return cur.fetchone() if cur.description else None

    async def reply(self) -> None:
        """wait() for the statement just sent."""
        while True:
            state = self.pg.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            self._waiter = self._loop.create_future()
            # Writable: a statement larger than the socket's buffer is still going out.
            writing = state == psycopg2.extensions.POLL_WRITE
            if writing:
                self._loop.add_writer(self.fd, _resolve, self._waiter)
            try:
                await self._waiter
            finally:
                self._waiter = None
                if writing:
                    self._loop.remove_writer(self.fd)

    def close_if_ended(self) -> bool:
        """For `on_idle_input` of a connection that expects nothing between statements: what the
        server sends then is a goodbye (a restart's FATAL, or EOF), so the connection goes now
        rather than fail its next statement. True when it went."""
        # On asyncio's own loop the reader may report a reply that its statement's task has
        # read since: nothing is left to read then.
        if not self.pg.closed and not select.select([self.fd], [], [], 0)[0]:
            return False
        self.close()
        return True

    @property
    def closed(self) -> bool:
        return self._closed or bool(self.pg.closed)

    def close(self) -> None:
        """Idempotent: once the socket is closed its number may be another's, whose reader a
        second remove_reader would take away."""
        if self._closed:
            return
        self._closed = True
        # The reader goes first, before the number is free.
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            self._loop.remove_reader(self.fd)
        self.pg.close()


class StatementPool:
    """Async-mode connections, each running one statement at a time, as many as `admission`
    lets in at once.

    The same contract as Database.run: a request waits for its turn at most as long as the
    admission says (then 503 + Retry-After), losing the database or a statement timeout is a 503,
    never a 500, statements are server-side prepared once per connection, and the events of a
    row's `events` column leave after the commit. Unlike Database.run it never
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
            await _send_events(conn, row, self.reply_timeout)
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


async def _send_events(conn: Watched, row: dict[str, Any] | None, timeout: float) -> None:
    """The NOTIFY of the events the committed statement returned (astegni/core/events.py). A
    failure loses them (logged) and the connection, never the answer: the write is committed."""
    if not row or not row.get("events"):
        return
    try:
        async with asyncio.timeout(timeout):
            await conn.run(events.SEND, (events.CHANNEL, row["events"]))
    except (psycopg2.Error, TimeoutError) as exc:
        events.log.warning("%d event(s) not sent: %r", len(row["events"]), exc)
        conn.close()
