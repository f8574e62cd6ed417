"""The one way to PostgreSQL: a pool of connections, one transaction helper, one admission rule.

- `await db.run(fn, *args)`: fn(cur, *args) in one transaction on a worker thread, the way a
  request does its database work (one thread hop per request).
- `await db.statement(query, params)`: one named statement, its own transaction, on the event
  loop itself (astegni/core/async_pg.py), for the session-request create only.
- `db.call(fn, *args)`, `with db.transaction() as cur`: the same transaction, for code that may
  block (scripts, tests, and the work `run` sends to a thread).

Admission: at most `pool_size` of the process's requests are at the database at once, whichever
way they go; a request waits at most `wait_seconds` for its turn, then gets 503 + Retry-After.
Losing the database, or a statement timeout, is a 503 and never a raw driver error.

Events a transaction or a statement queued (astegni/core/events.py) leave after its commit, through
the process's Sender, and never after a rollback.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from astegni.core import events
from astegni.core.errors import ServiceUnavailable
from astegni.core.queries import Query

log = logging.getLogger("astegni.core.database")

T = TypeVar("T")

# SQLSTATE classes of a connection that is gone: 08 connection exception, 57P operator
# intervention (admin shutdown, crash shutdown, cannot connect now).
_BROKEN_CLASSES = ("08", "57P")


class Connection(psycopg2.extensions.connection):
    """A pooled connection: the named statements it has PREPAREd, and the events its current
    transaction has queued."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: set[str] = set()
        self.events: list[str] = []


Cursor = psycopg2.extras.RealDictCursor


def is_broken(exc: BaseException, conn: psycopg2.extensions.connection | None) -> bool:
    """True when exc means the connection can no longer be used."""
    if not isinstance(exc, psycopg2.Error) or isinstance(exc, psycopg2.errors.QueryCanceled):
        return False
    if exc.pgcode:
        return exc.pgcode.startswith(_BROKEN_CLASSES)
    # No SQLSTATE: the error came from libpq, not the server. A server that crashed mid-session
    # even surfaces as a bare DatabaseError ("server closed the connection unexpectedly") on a
    # connection psycopg2 still calls open, and whose rollback() then "succeeds".
    return bool(conn is None or conn.closed) or is_unavailable(exc)


def is_unavailable(exc: BaseException) -> bool:
    """True when exc says the database cannot be reached or used now, rather than a bug."""
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return True
    return type(exc) is psycopg2.DatabaseError and not exc.pgcode


def as_unavailable(exc: BaseException, broken: bool) -> ServiceUnavailable | None:
    """The 503 that exc stands for when it says the database is out of reach or too slow."""
    if isinstance(exc, psycopg2.errors.QueryCanceled):
        return ServiceUnavailable("Database timed out", retry_after=1)
    if broken or is_unavailable(exc):
        log.warning("database unavailable: %s", str(exc).strip())
        return ServiceUnavailable("Database unavailable", retry_after=2)
    return None


def connection_options(statement_timeout_ms: int, application_name: str) -> dict[str, Any]:
    """psycopg2.connect() arguments shared by every connection that serves requests."""
    return {
        "application_name": application_name,
        "options": f"-c statement_timeout={statement_timeout_ms} -c timezone=UTC",
        "connection_factory": Connection,
        "cursor_factory": Cursor,
    }


def constraint_name(exc: psycopg2.Error) -> str | None:
    """The constraint behind an IntegrityError, for mapping it to a domain error."""
    diag = getattr(exc, "diag", None)
    return getattr(diag, "constraint_name", None)


class Busy(ServiceUnavailable):
    """Every admission slot stayed taken for the whole wait."""


class Admission:
    """At most `size` requests at the database at once; the next waits at most `wait_seconds`,
    then 503 + Retry-After. Made on first use, inside the event loop that serves the app."""

    def __init__(self, size: int, wait_seconds: float) -> None:
        self.size = size
        self.wait_seconds = wait_seconds
        self._slots: asyncio.Semaphore | None = None

    async def __aenter__(self) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: no suspension, and no wait_for task
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait_seconds)
        except TimeoutError:
            raise Busy("Server busy, try again", retry_after=1) from None

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._slots is not None
        self._slots.release()


class Database:
    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 8,
        wait_seconds: float = 2.0,
        connect_timeout: int = 5,
        statement_timeout_ms: int = 5000,
        application_name: str = "astegni",
    ) -> None:
        from astegni.core.statements import StatementPool  # it builds on this module's helpers

        self.dsn = dsn
        self.pool_size = pool_size
        self.admission = Admission(pool_size, wait_seconds)
        self._connect_kwargs = {
            "connect_timeout": connect_timeout,
            **connection_options(statement_timeout_ms, application_name),
        }
        self._idle: collections.deque[Connection] = collections.deque()
        self._lock = threading.Lock()
        self._threads = anyio.CapacityLimiter(pool_size)
        self._closed = False
        # Its run() is a lifespan task of the app; without it (scripts, tests) a transaction sends
        # its events itself.
        self.sender = events.Sender(dsn)
        self.statements = StatementPool(
            dsn,
            self.admission,
            connect_timeout=connect_timeout,
            statement_timeout_ms=statement_timeout_ms,
            application_name=f"{application_name}-statements",
        )

    # -------------------------------------------------------------- connections

    def connect(self) -> Connection:
        """A new connection outside the pool (LISTEN, migrations, admin work)."""
        try:
            return psycopg2.connect(self.dsn, **self._connect_kwargs)
        except psycopg2.OperationalError as exc:
            log.warning("cannot connect to PostgreSQL: %s", str(exc).strip())
            raise ServiceUnavailable("Database unavailable", retry_after=2) from exc

    def _take(self, fresh: bool) -> Connection:
        if not fresh:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is not None and not conn.closed:
                return conn
        return self.connect()

    def _give_back(self, conn: Connection, broken: bool) -> None:
        conn.events.clear()
        if broken:
            # A connection broken by a restart means its idle siblings died with the same server:
            # drop them now rather than let each of the next requests find out on its own.
            self._discard_idle()
        with self._lock:
            keep = not (broken or conn.closed or self._closed) and len(self._idle) < self.pool_size
            if keep:
                self._idle.append(conn)
        if not keep:
            with contextlib.suppress(Exception):
                conn.close()

    def _discard_idle(self) -> None:
        with self._lock:
            idle, self._idle = list(self._idle), collections.deque()
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        self._closed = True
        self._discard_idle()
        self.statements.close()

    # -------------------------------------------------------------- the transaction helper

    @contextlib.contextmanager
    def transaction(self, *, fresh: bool = False, committed: list[str] | None = None) -> Iterator[Cursor]:
        """One transaction on a pooled connection: commit on success (then its events leave, or
        go to `committed` for the caller to send), roll back on error. Blocking: for scripts,
        tests and code on a worker thread."""
        conn = self._take(fresh)
        broken = committing = False
        payloads: list[str] = []
        try:
            with conn.cursor() as cur:
                yield cur
            committing = True
            conn.commit()
        except BaseException as exc:
            broken = self._abort(conn, exc)
            if broken:
                exc.add_note(_CONNECTION_LOST)
            if committing:
                exc.add_note(_AT_COMMIT)
            raise
        else:
            payloads, conn.events = conn.events, []
            if committed is not None:
                committed.extend(payloads)
                payloads = []
            elif payloads and not self.sender.running:  # a script or a test: no Sender to wait for
                broken = not events.send_on(conn, payloads)
                payloads = []
        finally:
            self._give_back(conn, broken)
        if payloads:  # once the connection is back in the pool
            self.sender.send_from_thread(payloads)

    @staticmethod
    def _abort(conn: Connection, exc: BaseException) -> bool:
        """Roll back after exc; True when the connection must be discarded."""
        if is_broken(exc, conn):
            return True
        try:
            conn.rollback()
        except psycopg2.Error:
            return True
        return False

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(cursor, *args) in one transaction, and its result.

        Retried once when the connection turns out broken (a restart; then on a fresh
        connection) or PostgreSQL gave up the transaction (deadlock, serialization failure);
        never when it failed at COMMIT, since the first attempt may have been written.
        """
        return self._call(fn, args, None)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...], committed: list[str] | None) -> T:
        fresh = False
        for attempt in (1, 2):
            try:
                with self.transaction(fresh=fresh, committed=committed) as cur:
                    return fn(cur, *args)
            except BaseException as exc:
                notes = getattr(exc, "__notes__", ())
                broken = _CONNECTION_LOST in notes
                transient = broken or isinstance(exc, psycopg2.errors.TransactionRollbackError)
                if transient and attempt == 1 and _AT_COMMIT not in notes:
                    log.info("retrying after: %s", str(exc).strip())
                    fresh = broken
                    continue
                unavailable = as_unavailable(exc, broken)
                if unavailable is not None:
                    raise unavailable from exc
                raise
        raise AssertionError("unreachable")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`call` on a worker thread, once admitted; its events are sent once its slot is free."""
        # Handed to the Sender here when it runs on this loop; else the transaction sends them.
        same_loop = self.sender.running and self.sender.loop is asyncio.get_running_loop()
        committed: list[str] | None = [] if same_loop else None
        async with self.admission:
            result = await anyio.to_thread.run_sync(self._call, fn, args, committed, limiter=self._threads)
        if committed:
            await self.sender.send(committed)
        return result

    async def statement(self, query: Query, params: dict[str, Any]) -> dict[str, Any] | None:
        """One named statement, its own transaction, on the event loop, once admitted; its first
        row. An `events` column of that row leaves after the commit like a transaction's events
        (through the Sender: this is for the app, which runs one)."""
        row = await self.statements.fetch_one(query, params)
        if row is not None and row.get("events"):
            await self.sender.send(row["events"])
        return row

    async def ping(self) -> bool:
        """Whether the database answers; a process whose slots are all busy serving is ready."""
        try:
            await self.run(_select_one)
            return True
        except Busy:
            return True
        except ServiceUnavailable:
            return False


# Notes transaction() adds to an exception, for call() to decide on a retry.
_CONNECTION_LOST = "the connection is lost"
_AT_COMMIT = "failed at COMMIT"


def _select_one(cur: Cursor) -> None:
    cur.execute("SELECT 1")
