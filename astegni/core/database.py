"""The connection pool and the one transaction helper.

Database work is synchronous psycopg2 code. An async endpoint hands a whole unit of work to
`Database.run`, which takes a pool slot on the event loop (waiting briefly, then 503), runs the
function in a worker thread inside one transaction, and returns its result: one thread hop per
request. Connections broken by a PostgreSQL restart are discarded and the work is retried once
on a fresh connection when it had not reached COMMIT. (A write that is one statement can skip
the thread altogether: astegni/core/async_pg.py.)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from astegni.core.errors import ServiceUnavailable

log = logging.getLogger("astegni.core.database")

P = ParamSpec("P")
T = TypeVar("T")

# SQLSTATE classes of a connection that is gone: 08 connection exception, 57P operator
# intervention (admin shutdown, crash shutdown, cannot connect now).
_BROKEN_CLASSES = ("08", "57P")


class Connection(psycopg2.extensions.connection):
    """A connection that remembers which named statements it has PREPAREd."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: set[str] = set()


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


def connection_options(statement_timeout_ms: int, application_name: str) -> dict[str, Any]:
    """psycopg2.connect() arguments shared by every connection that serves requests."""
    return {
        "application_name": application_name,
        "options": f"-c statement_timeout={statement_timeout_ms} -c timezone=UTC",
        "connection_factory": Connection,
        "cursor_factory": Cursor,
    }


def as_unavailable(exc: BaseException, broken: bool) -> ServiceUnavailable | None:
    """The 503 that exc stands for when it says the database is out of reach or too slow."""
    if isinstance(exc, psycopg2.errors.QueryCanceled):
        return ServiceUnavailable("Database timed out", retry_after=1)
    if broken or is_unavailable(exc):
        log.warning("database unavailable: %s", str(exc).strip())
        return ServiceUnavailable("Database unavailable", retry_after=2)
    return None


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
        self.dsn = dsn
        self.pool_size = pool_size
        self.wait_seconds = wait_seconds
        self._connect_kwargs = {
            "connect_timeout": connect_timeout,
            **connection_options(statement_timeout_ms, application_name),
        }
        self._idle: collections.deque[Connection] = collections.deque()
        self._lock = threading.Lock()
        # Sync callers (scripts, tests, background threads) share the same bound.
        self._sync_slots = threading.BoundedSemaphore(pool_size)
        self._async_slots: asyncio.Semaphore | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._closed = False

    # -------------------------------------------------------------- connections

    def connect(self) -> Connection:
        """A new connection outside the pool (LISTEN, migrations, admin work)."""
        try:
            return psycopg2.connect(self.dsn, **self._connect_kwargs)
        except psycopg2.OperationalError as exc:
            log.warning("cannot connect to PostgreSQL: %s", str(exc).strip())
            raise ServiceUnavailable("Database unavailable", retry_after=2) from exc

    def _take(self, fresh: bool = False) -> Connection:
        if not fresh:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is not None and not conn.closed:
                return conn
        return self.connect()

    def _give_back(self, conn: Connection, broken: bool) -> None:
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

    # -------------------------------------------------------------- transactions

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One transaction on a pooled connection: commit on success, roll back on error.

        Blocking; for scripts, tests and code already on a worker thread. Waits for a pool slot
        at most `wait_seconds`, then raises ServiceUnavailable.
        """
        if not self._sync_slots.acquire(timeout=self.wait_seconds):
            raise ServiceUnavailable("Server busy, try again", retry_after=1)
        try:
            with self._transaction() as cur:
                yield cur
        finally:
            self._sync_slots.release()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        conn = self._take()
        broken = False
        try:
            with conn.cursor() as cur:
                yield cur
            conn.commit()
        except BaseException as exc:
            broken = self._abort(conn, exc)
            raise
        finally:
            self._give_back(conn, broken)

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
        """Run fn(cursor, *args) in one transaction and return its result.

        Retried once, on a fresh connection, when the connection turns out broken (a restart) or
        PostgreSQL gave up the transaction (deadlock, serialization failure); never when it failed
        at COMMIT, since the first attempt may have been written. Losing the database, or a
        statement timeout, is a ServiceUnavailable (503) and never a raw OperationalError.
        """
        for attempt in (1, 2):
            conn = self._take(fresh=attempt == 2)
            broken = committing = False
            try:
                with conn.cursor() as cur:
                    result = fn(cur, *args)
                committing = True
                conn.commit()
                return result
            except BaseException as exc:
                broken = self._abort(conn, exc)
                transient = broken or isinstance(exc, psycopg2.errors.TransactionRollbackError)
                if transient and not committing and attempt == 1:
                    log.info("retrying on a fresh connection after: %s", str(exc).strip())
                    continue
                unavailable = as_unavailable(exc, broken)
                if unavailable is not None:
                    raise unavailable from exc
                raise
            finally:
                self._give_back(conn, broken)
        raise AssertionError("unreachable")

    def _slots(self) -> asyncio.Semaphore:
        # Made on first use, inside the event loop that serves the app.
        if self._async_slots is None:
            self._async_slots = asyncio.Semaphore(self.pool_size)
            self._limiter = anyio.CapacityLimiter(self.pool_size)
        return self._async_slots

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(cursor, *args) in one transaction on a worker thread (one hop).

        Waits at most `wait_seconds` for a pool slot, then answers 503 with Retry-After.
        """
        slots = self._slots()
        await acquire_slot(slots, self.wait_seconds)
        try:
            return await anyio.to_thread.run_sync(self.call, fn, *args, limiter=self._limiter)
        finally:
            slots.release()

    def ping(self) -> bool:
        try:
            self.call(lambda cur: cur.execute("SELECT 1"))
            return True
        except ServiceUnavailable:
            return False


async def acquire_slot(slots: asyncio.Semaphore, wait_seconds: float) -> None:
    """Take a pool slot, waiting at most wait_seconds; then 503 with Retry-After."""
    if not slots.locked():
        await slots.acquire()  # a free slot: returns without suspending, and without wait_for's task
        return
    try:
        await asyncio.wait_for(slots.acquire(), wait_seconds)
    except TimeoutError:
        raise ServiceUnavailable("Server busy, try again", retry_after=1) from None


def constraint_name(exc: psycopg2.Error) -> str | None:
    """The constraint behind an IntegrityError, for mapping it to a domain error."""
    diag = getattr(exc, "diag", None)
    return getattr(diag, "constraint_name", None)
