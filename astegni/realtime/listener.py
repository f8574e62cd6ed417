"""The process's one LISTEN connection: every event committed on the database, to the hub.

Writers collect their events during the writing transaction (astegni/core/events.py), and they
are sent with NOTIFY on CHANNEL once that transaction has committed, so an event never announces
a write that was rolled back. PostgreSQL delivers each to every process LISTENing on the channel,
so two server processes on one database behave as one service. An event too large for a NOTIFY
payload is stored in realtime_events and the NOTIFY carries {"ref": id}; the listener reads it
back (the housekeeping sweep deletes stored events minutes later).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import psycopg2

from astegni.core.async_pg import Watched
from astegni.core.events import CHANNEL
from astegni.core.queries import Queries, execute

log = logging.getLogger("astegni.realtime.listener")
queries = Queries("realtime/queries.sql")
# An event too large for a NOTIFY payload is stored in realtime_events and read by every
# process's listener moments after the NOTIFY; five minutes leaves a wide margin.
KEEP_EVENTS_SECONDS = 300


def purge(cur: Any) -> None:
    """The sweep's step: stored events past KEEP_EVENTS_SECONDS."""
    execute(cur, queries.purge_events, {"keep_seconds": KEEP_EVENTS_SECONDS})


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class Listener:
    """The process's one LISTEN connection, read on the event loop; events go to `deliver`.

    The connection is in psycopg2's async mode and watched by the loop (Watched), so a
    notification costs one callback between requests, and those that arrive while the loop is
    busy are read together; while no socket wants events they are dropped right there. The
    listener reconnects with backoff after PostgreSQL restarts, and tells `on_state` so.
    """

    def __init__(
        self,
        dsn: str,
        deliver: Callable[[list[int], str], None],
        on_state: Callable[[bool, bool], None],
        *,
        wanted: Callable[[], bool] = lambda: True,
        idle_probe_seconds: float = 15.0,
        reply_timeout_seconds: float = 10.0,
        statement_timeout_ms: int = 5000,
    ) -> None:
        self.dsn = dsn
        self.deliver = deliver
        self.on_state = on_state  # (listening, after_a_loss)
        # False while this process has no open socket: every process receives every event, and
        # decoding them for nobody cost a tenth of the CPU of a busy request path.
        self.wanted = wanted
        self.idle_probe_seconds = idle_probe_seconds
        # Bounds every wait on the server (connect, probe, fetch): a host that is gone sends no
        # error, and only a reconnect notices.
        self.reply_timeout_seconds = reply_timeout_seconds
        # A statement stuck on the server (a fetch behind a lock on realtime_events) is ended by
        # the server itself, not left waiting there after the reply timeout drops the connection.
        self.statement_timeout_ms = statement_timeout_ms
        # Set by _on_input (the loop's reader callback), read by _pump (the task):
        self._heard = False  # notifications arrived since the pump last looked
        self._lost: psycopg2.Error | None = None  # the connection broke between statements
        self._wake: asyncio.Future[None] | None = None  # the pump is waiting on this

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff."""
        delay, had_connection = 0.5, False
        while True:
            conn = None
            try:
                async with asyncio.timeout(self.reply_timeout_seconds):
                    conn = await Watched.connect(
                        self.dsn,
                        self._on_input,
                        application_name="astegni-listener",
                        options=f"-c statement_timeout={self.statement_timeout_ms}",
                        # Find a silently dead server (network loss) while nothing is asked.
                        keepalives=1,
                        keepalives_idle=30,
                        keepalives_interval=10,
                        keepalives_count=3,
                    )
                    await self._execute(conn, f"LISTEN {CHANNEL}")
                log.info("listening on %s", CHANNEL)
                self.on_state(True, had_connection)
                had_connection, delay = True, 0.5
                await self._pump(conn)
            except (psycopg2.Error, OSError, TimeoutError) as exc:
                reason = str(exc).strip()[:200] or "no reply"
                log.warning("listener connection lost (%s); retrying in %.1fs", reason, delay)
            except Exception:  # a bug in delivery must not end real-time delivery for good
                log.exception("listener failed; restarting in %.1fs", delay)
            finally:
                if conn is not None:
                    conn.close()
                self.on_state(False, False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _on_input(self, conn: Watched) -> None:
        """Called by the loop when the server sends between statements: notifications, or an
        error as it ends the session. (On asyncio's own loop also a reply that a statement's
        task has read since: poll() then finds nothing.)"""
        try:
            conn.pg.poll()
        except psycopg2.Error as exc:
            self._lost = exc
            conn.close()  # else the loop reports the dead socket again and again
            self._wake_pump()
            return
        if conn.pg.notifies:
            self._heard = True
            if self.wanted():
                self._wake_pump()
            else:
                conn.pg.notifies.clear()

    def _wake_pump(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _pump(self, conn: Watched) -> None:
        self._lost = None
        loop = asyncio.get_running_loop()
        while True:
            self._heard = False
            self._wake = loop.create_future()
            quiet = loop.call_later(self.idle_probe_seconds, self._wake_pump)
            try:
                await self._wake
            finally:
                quiet.cancel()
                self._wake = None
            if self._lost is not None:
                raise self._lost
            if not self._heard:  # quiet: make sure the server is still there
                await self._execute(conn, "SELECT 1")
            # The probe above and every fetch below read the socket too, and keep the
            # notifications they find in conn.pg.notifies for this loop.
            while conn.pg.notifies:
                notifies, conn.pg.notifies[:] = list(conn.pg.notifies), []
                if self.wanted():
                    for notify in notifies:
                        await self._handle(conn, notify.payload)

    async def _execute(self, conn: Watched, sql: str, params: Any = None) -> Any:
        async with asyncio.timeout(self.reply_timeout_seconds):
            return await conn.run(sql, params)

    async def _handle(self, conn: Watched, payload: str) -> None:
        try:
            event = json.loads(payload)
            if "ref" in event:  # too large for a NOTIFY payload: stored in realtime_events
                row = await self._execute(conn, queries.stored_event.sql, {"id": event["ref"]})
                if row is None:
                    log.warning("event %s is gone (purged?)", event["ref"])
                    return
                event = row[0]
            user_ids = [int(user_id) for user_id in event["user_ids"]]
            text = _dumps({"type": event["type"], "data": event.get("data")})
        except (ValueError, KeyError, TypeError):
            log.exception("malformed event dropped: %.200s", payload)
            return
        self.deliver(user_ids, text)
