"""Async-mode psycopg2 connections driven by the asyncio event loop: the statement pool's
(astegni/core/statements.py), the event sender's (astegni/core/events.py) and the real-time
listener's (astegni/realtime/listener.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions

log = logging.getLogger("astegni.core.async_pg")


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
