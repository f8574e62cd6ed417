"""Real-time events: queued during the writing transaction, sent after its commit.

A write queues its events on its connection (`publish`, or `queue` for events a SQL function
built, such as the session-request functions' `events` column); the database boundary
(astegni/core/database.py) hands them to the process's Sender once the transaction has
committed, and drops them on a rollback. The Sender NOTIFYs them on CHANNEL; every server
process LISTENs there and pushes each event to its own WebSockets (astegni/realtime/). The
envelope is built by realtime_event() (astegni/core/functions.sql): one shape, one recipient rule
(a user who blocks the actor gets nothing the actor caused), and events over NOTIFY's size limit
stored by reference.

Why after the commit rather than a NOTIFY inside the transaction: PostgreSQL holds one lock per
database from a notifying commit's start to its end, WAL flush included, so notifying commits
queue behind each other (make bench: the create a quarter slower that way). Why one Sender per
process rather than a NOTIFY from each committing connection: each NOTIFY is a transaction and a
round trip of its own, and batching the events that arrive while one is in flight saved 12 % of
the create's server CPU in make bench (docs/benchmarks.md, 2026-11-30). The Sender's connection commits with
synchronous_commit off: the notification queue is not crash-safe anyway.

The price: a process that dies between a commit and its NOTIFY (a millisecond), or a NOTIFY that
cannot be sent (see Sender._send_batch), loses those events (logged). The write itself is
committed, and clients catch up through GET /api/chat/messages/{id}?after_id= whenever their
socket reconnects. Batches mix transactions, and PostgreSQL delivers identical payloads of one
transaction once: events carry the ids and timestamps of what they announce, and the few that
can repeat (a read marker set twice to the same message) say the same thing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import psycopg2

from astegni.core.async_pg import Watched

log = logging.getLogger("astegni.core.events")

CHANNEL = "astegni_events"

# One statement in autocommit: its own transaction, committed without waiting for the WAL flush.
SEND = (
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify(%s, payload)"
    " FROM unnest(%s::text[]) WITH ORDINALITY AS e(payload, n) ORDER BY n"
)
TIMEOUT_SECONDS = 5.0


def _json_default(value: Any) -> Any:
    # As the API's own responses render them: timestamps ISO 8601, money a JSON number.
    if isinstance(value, Decimal):
        return float(value)
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def publish(
    cur: Any, event_type: str, user_ids: Iterable[int], data: dict[str, Any], *, actor: int | None = None
) -> None:
    """Queue an event for every open socket of user_ids, less those who block `actor` (the user
    whose write caused it; None: the system); it leaves when the transaction commits."""
    cur.execute(
        "SELECT realtime_event(%s, %s::integer[], %s::jsonb, %s::integer) AS payload",
        (
            event_type,
            sorted(set(user_ids)),
            json.dumps(data, default=_json_default, separators=(",", ":")),
            actor,
        ),
    )
    queue(cur, [cur.fetchone()["payload"]])


def queue(cur: Any, payloads: Iterable[str] | None) -> None:
    """Queue events a SQL function built with realtime_event(), in their order."""
    if payloads:
        cur.connection.events.extend(payloads)


def send_on(conn: Any, payloads: list[str]) -> bool:
    """NOTIFY payloads on a committed connection of a process with no Sender running (a script, a
    test); False when conn failed doing so (logged; the caller discards conn)."""
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(SEND, (CHANNEL, payloads))
        return True
    except psycopg2.Error as exc:
        log.warning("%d event(s) not sent: %s", len(payloads), str(exc).strip()[:200])
        return False
    finally:
        if not conn.closed:
            conn.autocommit = False


class Sender:
    """The server process's NOTIFYs: the events of committed transactions, in batches, on one
    async-mode connection of its own. `run()` is its lifespan task."""

    def __init__(self, dsn: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self._pending: list[tuple[list[str], asyncio.Future[None]]] = []
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._conn: Watched | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    async def send(self, payloads: list[str]) -> None:
        """Returns once they are out, or their batch failed (logged, never raised: the write they
        announce is committed either way)."""
        if not self.running:
            log.warning("%d event(s) not sent: the Sender is not running", len(payloads))
            return
        await self._enqueue(payloads)  # a batch ends within its own timeouts

    def send_from_thread(self, payloads: list[str]) -> None:
        """`send` for code off the Sender's loop (a worker thread): waits for the batch, at most
        three timeouts."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._thread:
            log.warning("%d event(s) not sent: no Sender to hand them to", len(payloads))
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.send(payloads), loop).result(self.timeout * 3)

    def _enqueue(self, payloads: list[str]) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((payloads, future))
        if self._wake is not None:
            self._wake.set()
        return future

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._wake = asyncio.Event()
        try:
            while True:
                if not self._pending:
                    await self._wake.wait()
                self._wake.clear()
                batch, self._pending = self._pending, []
                try:
                    await self._send_batch([payload for part, _ in batch for payload in part])
                finally:
                    _release(batch)
        finally:
            self._loop = None
            self._close()
            if self._pending:
                dropped = sum(len(part) for part, _ in self._pending)
                log.warning("%d event(s) not sent: the Sender stopped", dropped)
                _release(self._pending)
                self._pending = []

    async def _send_batch(self, payloads: list[str]) -> None:
        """One NOTIFY statement; when its connection is lost (a server restart), once more on a
        fresh one. A batch that times out or fails in the server is not sent again (a timed-out
        one may have gone out, and clients would see its events twice) and is logged as lost."""
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(self.timeout):
                    if self._conn is None or self._conn.closed:
                        self._conn = await Watched.connect(
                            self.dsn, Watched.close_if_ended, application_name="astegni-events"
                        )
                    await self._conn.run(SEND, (CHANNEL, payloads))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._close()
                if attempt == 2 or not isinstance(exc, psycopg2.OperationalError):
                    log.error("%d event(s) not sent: %r", len(payloads), exc)
                    return

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def _release(batch: list[tuple[list[str], asyncio.Future[None]]]) -> None:
    for _, future in batch:
        if not future.done():
            future.set_result(None)
