"""NOTIFYs sent after a commit, from the event loop, batched, on one connection per process.

Why not inside the writing transaction (astegni.core.events.publish)? A NOTIFY holds PostgreSQL's
global notify lock from the commit's start to its end, WAL flush included, so every notifying
commit waits for the one before it: the create of session requests peaked at ~320/s that way,
against ~890/s with the NOTIFY sent once the create had committed.

A transaction holding only a NOTIFY still gets a transaction id (the queue entries carry it), so
its commit writes a record and, by default, waits for the WAL flush with the lock held. This
connection commits asynchronously instead (synchronous_commit=off): the notification queue is not
crash-safe anyway, so the flush protects nothing here, and the lock is held for microseconds.

Sending it through Database.run would cost a second thread hop and three round trips per request;
here an async-mode psycopg2 connection (autocommit) is driven by the event loop itself, and the
payloads that arrive while one statement is in flight go out together in the next one.

An event can be lost only if its batch fails (logged; the next batch reconnects): the write it
announces is committed either way, and clients catch up through after_id as after any reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from astegni.core.async_pg import Watched
from astegni.core.events import CHANNEL

log = logging.getLogger("astegni.core.notifier")

_NOTIFY = "SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) WITH ORDINALITY AS e(payload, n) ORDER BY n"


class Notifier:
    def __init__(self, dsn: str, *, timeout: float = 5.0, channel: str = CHANNEL) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self.channel = channel
        self._pending: list[tuple[str, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._conn: Watched | None = None

    async def send(self, payload: str) -> None:
        """Returns once the NOTIFY is out (or its batch failed, which is logged, not raised)."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((payload, future))
        self._wake.set()
        await future

    async def run(self) -> None:
        """The sender task (one per process, started by the app's lifespan)."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                batch, self._pending = self._pending, []
                if batch:
                    await self._send_batch(batch)
        finally:
            self._close()
            for _, future in self._pending:
                future.cancel()

    async def _send_batch(self, batch: list[tuple[str, asyncio.Future[None]]]) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                conn = await self._connection()
                await conn.run(_NOTIFY, (self.channel, [payload for payload, _ in batch]))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%d event(s) not sent: %s", len(batch), str(exc).strip()[:200])
            self._close()
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def _connection(self) -> Watched:
        if self._conn is None or self._conn.closed:
            self._conn = await Watched.connect(
                self.dsn,
                Watched.close_if_ended,
                application_name="astegni-notifier",
                options="-c synchronous_commit=off",
            )
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
