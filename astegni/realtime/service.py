"""Real-time delivery in this process: the hub of WebSockets per user (hub.py), the one LISTEN
connection that feeds it (listener.py) and the heartbeat; the endpoint, /api/chat/ws, is in
endpoint.py.

Writers collect their events during the writing transaction (astegni/core/events.py) and they are
sent once it has committed; every server process receives every event through its listener and
pushes it to its own sockets of the event's users.

Events committed while the listener was away are lost to the sockets, so after a reconnect every
socket is closed with 1012 and clients reconnect and catch up through
GET /api/chat/messages/{id}?after_id=. The heartbeat pings every socket (a dead or stalled one
fills its queue or times out its send) and closes those of deactivated users with 4401. On
shutdown every socket is closed with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
from collections.abc import Callable
from typing import Any

import anyio

from astegni.core.database import Database
from astegni.core.errors import AppError
from astegni.core.queries import Queries, fetch_all
from astegni.realtime.hub import CLOSE_GOING_AWAY, CLOSE_RESTART, CLOSE_UNAUTHORIZED, Hub
from astegni.realtime.listener import Listener

queries = Queries("realtime/queries.sql")
PING = json.dumps({"type": "ping"})


class Realtime:
    """The process's real-time service: the hub, its listener, the heartbeat. `run()` is the
    lifespan task; cancelling it closes every socket with 1001."""

    def __init__(
        self,
        db: Database,
        *,
        queue_size: int = 256,
        send_timeout: float = 10.0,
        heartbeat_seconds: float = 25.0,
        max_sockets_per_user: int = 0,
    ) -> None:
        self.db = db
        self.queue_size = queue_size
        self.send_timeout = send_timeout
        self.heartbeat_seconds = heartbeat_seconds
        self.hub = Hub(max_sockets_per_user)
        self._listening = asyncio.Event()
        self._exiting = False

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    async def run(self) -> None:
        listener = Listener(self.db.dsn, self.hub.dispatch, self._on_listener_state, wanted=self.hub.__bool__)
        listening = asyncio.create_task(listener.run(), name="astegni-listener")
        self._close_on_exit_signals(asyncio.get_running_loop())
        try:
            while True:
                await asyncio.sleep(self.heartbeat_seconds)
                await self.heartbeat()
        finally:
            await self._close_all()
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening

    def _on_listener_state(self, listening: bool, after_a_loss: bool) -> None:
        if listening:
            self._listening.set()
            if after_a_loss:
                self.hub.close_all(CLOSE_RESTART, "reconnect and catch up")
        else:
            self._listening.clear()

    def _close_on_exit_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        """uvicorn answers SIGTERM/SIGINT by failing every WebSocket with 1012 before the lifespan
        shutdown runs; close ours with 1001 first, then let its handler proceed."""
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread can set handlers (not under the TestClient)
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(signum: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
                if self._exiting:  # a second signal: no more waiting
                    previous(signum, frame)
                    return
                self._exiting = True
                loop.call_soon_threadsafe(lambda: loop.create_task(self._close_then(previous, signum, frame)))

            signal.signal(sig, handler)

    async def _close_then(self, previous: Callable[..., Any], signum: int, frame: Any) -> None:
        # uvicorn's handler only asks its server to exit; passing the signal on once our close
        # frames are out (at most ~2 s) keeps it from racing them with its own 1012.
        await self._close_all()
        previous(signum, frame)

    async def _close_all(self) -> None:
        """Close every socket with 1001 and let them send their close frames (at most ~2 s)."""
        self.hub.close_all(CLOSE_GOING_AWAY, "server shutting down")
        for _ in range(40):
            if not self.hub:
                break
            await asyncio.sleep(0.05)

    async def heartbeat(self) -> None:
        """Ping every socket (a dead or stalled one fills its queue or times out its send), and
        drop the sockets of users deactivated since they connected."""
        for socket in self.hub.sockets():
            socket.offer(PING)
        user_ids = self.hub.user_ids()
        if not user_ids:
            return
        try:
            rows = await self.db.run(fetch_all, queries.active_users, {"user_ids": user_ids})
        except AppError:
            return  # the database is away; try again next beat
        active = {row["id"] for row in rows}
        self.hub.close_users([u for u in user_ids if u not in active], CLOSE_UNAUTHORIZED, "deactivated")

    async def wait_listening(self, timeout: float) -> bool:
        with anyio.move_on_after(timeout):
            await self._listening.wait()
        return self.listening
