"""Real-time delivery: one LISTEN connection per process and a hub of WebSockets per user (the
endpoint, /api/chat/ws, is in realtime_endpoint.py).

Writers call astegni.core.events.publish, which issues pg_notify inside their transaction; PostgreSQL
delivers the notification only when that transaction commits, to every process LISTENing on the
channel, so two server processes on one database behave as one service.

Each process keeps ONE dedicated LISTEN connection (not from the pool), in async mode and read by
the event loop, which never blocks on it. The listener reconnects with backoff after PostgreSQL
restarts; events committed while it was away are lost to the sockets, so after a reconnect every
socket is closed with 1012 and clients reconnect and catch up through
GET /api/chat/messages/{id}?after_id=.

Every socket has a bounded queue and a writer task: fan-out only enqueues (never awaits a
client), a socket whose queue is full or whose send stalls is closed with 1013, and a heartbeat
pings every socket and drops those of deactivated users. A socket closes with 4401 when its token
expires, unless the client sent a fresh one; frames over 64 KiB close it with 1009; a user's
sockets past the per-process limit are closed oldest first with 4408.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import psycopg2
import psycopg2.errors
from starlette.websockets import WebSocketState

from astegni.core.async_pg import Watched
from astegni.core.database import Database
from astegni.core.errors import AppError, Unauthorized
from astegni.core.events import CHANNEL
from astegni.core.queries import Queries, fetch_all
from astegni.core.security import Claims

log = logging.getLogger("astegni.realtime.service")
queries = Queries("chat/queries.sql")

# Close codes. 4401/4403 mirror HTTP 401/403 (the 4000-4999 range is the application's).
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_GOING_AWAY = 1001  # server shutting down
CLOSE_RESTART = 1012  # the listener reconnected: events may have been missed, reconnect + catch up
CLOSE_TRY_AGAIN = 1013  # too slow to keep up, or delivery unavailable right now
CLOSE_TOO_BIG = 1009  # a frame over MAX_FRAME_BYTES
CLOSE_TOO_MANY = 4408  # the user opened more sockets than allowed; this was the oldest

# Client frames are small JSON documents (auth, ping); uvicorn refuses larger ones too (app.py).
MAX_FRAME_BYTES = 64 * 1024
PING = json.dumps({"type": "ping"})
PONG = json.dumps({"type": "pong"})


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


# ---------------------------------------------------------------------------- sockets and hub


class Socket:
    """One open WebSocket of a user: a bounded queue drained by its own writer task."""

    def __init__(self, websocket: Any, user_id: int, queue_size: int, expires: float = float("inf")) -> None:
        self.websocket = websocket
        self.user_id = user_id
        self.expires = expires  # of the newest token the client sent, seconds since the epoch
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.close_code: int | None = None
        self.close_reason = ""
        self.closing = asyncio.Event()

    def offer(self, text: str) -> None:
        """Queue text without waiting; a socket that cannot keep up is closed, not waited for."""
        if self.close_code is not None:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.close(CLOSE_TRY_AGAIN, "too slow")

    def close(self, code: int, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.closing.set()


class Hub:
    """The open sockets of this process, by user, oldest first."""

    def __init__(self, max_per_user: int = 0) -> None:
        self.max_per_user = max_per_user  # 0: no limit
        self._by_user: dict[int, dict[Socket, None]] = defaultdict(dict)

    def add(self, socket: Socket) -> None:
        sockets = self._by_user[socket.user_id]
        sockets[socket] = None
        if self.max_per_user:
            open_ = [s for s in sockets if s.close_code is None]
            for oldest in open_[: max(0, len(open_) - self.max_per_user)]:
                oldest.close(CLOSE_TOO_MANY, "too many sockets for this user")

    def discard(self, socket: Socket) -> None:
        sockets = self._by_user.get(socket.user_id)
        if sockets is not None:
            sockets.pop(socket, None)
            if not sockets:
                del self._by_user[socket.user_id]

    def dispatch(self, user_ids: Iterable[int], text: str) -> None:
        for user_id in user_ids:
            for socket in tuple(self._by_user.get(user_id, ())):
                socket.offer(text)

    def sockets(self) -> list[Socket]:
        return [socket for sockets in self._by_user.values() for socket in sockets]

    def user_ids(self) -> list[int]:
        return list(self._by_user)

    def close_users(self, user_ids: Iterable[int], code: int, reason: str = "") -> None:
        for user_id in user_ids:
            for socket in tuple(self._by_user.get(user_id, ())):
                socket.close(code, reason)

    def close_all(self, code: int, reason: str = "") -> None:
        for socket in self.sockets():
            socket.close(code, reason)

    def __len__(self) -> int:
        return sum(len(sockets) for sockets in self._by_user.values())

    def __bool__(self) -> bool:
        return bool(self._by_user)


# Verifies a token sent in a later `auth` frame: its claims, or Unauthorized.
Authenticate = Callable[[str], Awaitable[Claims]]


async def _refuse(token: str) -> Claims:
    raise Unauthorized()


async def serve_socket(
    hub: Hub, socket: Socket, send_timeout: float, authenticate: Authenticate = _refuse
) -> None:
    """Run one accepted socket until the client leaves or the server closes it: the writer, the
    reader, the token's expiry and the close request run side by side, and the first to finish
    ends them all."""
    hub.add(socket)
    try:
        async with anyio.create_task_group() as group:

            async def until_done(part: Callable[[], Awaitable[Any]]) -> None:
                with contextlib.suppress(Exception):  # a client gone mid-frame ends like a close
                    await part()
                group.cancel_scope.cancel()

            group.start_soon(until_done, lambda: _write(socket, send_timeout))
            group.start_soon(until_done, lambda: _read(socket, authenticate))
            group.start_soon(until_done, lambda: _expire(socket))
            group.start_soon(until_done, socket.closing.wait)
    finally:
        hub.discard(socket)
    if socket.close_code is not None:
        await close_quietly(socket.websocket, socket.close_code, socket.close_reason)


async def _write(socket: Socket, send_timeout: float) -> None:
    while True:
        text = await socket.queue.get()
        try:
            with anyio.fail_after(send_timeout):
                await socket.websocket.send_text(text)
        except TimeoutError:
            socket.close(CLOSE_TRY_AGAIN, "too slow")
            return


async def _read(socket: Socket, authenticate: Authenticate) -> None:
    """Client frames: {"type": "ping"} is answered; {"type": "auth", "token"} with a fresh token
    of the same user extends the socket's life, any other token closes it (4401); a frame over
    MAX_FRAME_BYTES closes it (1009); anything else is ignored."""
    while True:
        frame = await receive_frame(socket.websocket)
        if frame is None:
            return
        if oversized(frame):
            socket.close(CLOSE_TOO_BIG, "frame too big")
            return
        body = parse_frame(frame)
        if body.get("type") == "ping":
            socket.offer(PONG)
        elif body.get("type") == "auth":
            await _renew(socket, authenticate, body.get("token"))


async def _renew(socket: Socket, authenticate: Authenticate, token: object) -> None:
    try:
        if not isinstance(token, str):
            raise Unauthorized()
        claims = await authenticate(token)
    except Unauthorized:
        socket.close(CLOSE_UNAUTHORIZED, "invalid token")
        return
    except AppError:
        socket.close(CLOSE_TRY_AGAIN, "database unavailable")
        return
    if claims.user_id != socket.user_id:
        socket.close(CLOSE_UNAUTHORIZED, "token of another user")
        return
    socket.expires = max(socket.expires, claims.expires)


async def _expire(socket: Socket) -> None:
    """Close with 4401 once the newest token the client sent has expired."""
    while (left := socket.expires - time.time()) > 0:
        await anyio.sleep(min(left, 86400))
    socket.close(CLOSE_UNAUTHORIZED, "token expired")


async def receive_frame(websocket: Any) -> str | bytes | None:
    """The next frame's payload; None when the client has gone."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    return text if text is not None else message.get("bytes") or b""


def oversized(frame: str | bytes) -> bool:
    # A str's length counts characters: at most 4 bytes each in UTF-8.
    return len(frame) > MAX_FRAME_BYTES or (isinstance(frame, str) and len(frame.encode()) > MAX_FRAME_BYTES)


def parse_frame(frame: str | bytes) -> dict[str, Any]:
    """A client frame's JSON object; {} for anything else."""
    try:
        body = json.loads(frame)
    except (ValueError, TypeError):
        return {}
    return body if isinstance(body, dict) else {}


async def close_quietly(websocket: Any, code: int, reason: str = "") -> None:
    if getattr(websocket, "application_state", None) == WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(Exception), anyio.move_on_after(2):
        await websocket.close(code, reason)


# ---------------------------------------------------------------------------- the listener


class Listener:
    """The process's one LISTEN connection, read on the event loop; events go to `deliver`.

    The connection is in psycopg2's async mode and watched by the loop (Watched), so a
    notification costs one callback between requests, and those that arrive while the loop is
    busy are read together; while no socket wants events they are dropped right there. A thread
    blocked in select() did the same work with a GIL hand-over per notification, and every
    create wakes every process's listener, sockets or not.
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
        purge_seconds: float = 60.0,
        keep_events_seconds: float = 300.0,
    ) -> None:
        self.dsn = dsn
        self.deliver = deliver
        self.on_state = on_state  # (listening, after_a_loss)
        # False while this process has no open socket: every process receives every event, and
        # decoding them for nobody cost a tenth of the CPU of a busy request path.
        self.wanted = wanted
        self.idle_probe_seconds = idle_probe_seconds
        # Bounds every wait on the server (connect, probe, fetch, purge): a host that is gone
        # sends no error, and only a reconnect notices.
        self.reply_timeout_seconds = reply_timeout_seconds
        # A slow statement (a purge behind a lock) is cancelled by the server, an error retried
        # at the next purge, well before the reply timeout would take it for a server gone.
        self.statement_timeout_ms = statement_timeout_ms
        self.purge_seconds = purge_seconds
        self.keep_events_seconds = keep_events_seconds
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
        next_purge = time.monotonic()
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
            if time.monotonic() >= next_purge:
                await self._purge(conn)
                next_purge = time.monotonic() + self.purge_seconds
            # Every statement above and every fetch below reads the socket too, and keeps the
            # notifications it finds in conn.pg.notifies for this loop.
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
            if "ref" in event:  # too large for NOTIFY: stored by events.publish
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

    async def _purge(self, conn: Watched) -> None:
        """Stored events are read within moments of their NOTIFY; old ones are deleted (any
        process may do it, the DELETE is idempotent)."""
        try:
            await self._execute(conn, queries.purge_events.sql, {"keep_seconds": self.keep_events_seconds})
        except psycopg2.errors.UndefinedTable:
            pass  # the schema is not applied yet
        except psycopg2.errors.QueryCanceled:
            log.warning("purge of stored events took over %d ms; retried later", self.statement_timeout_ms)


# ---------------------------------------------------------------------------- the service


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
            self.hub.close_all(CLOSE_GOING_AWAY, "server shutting down")
            for _ in range(40):  # let the sockets send their close frames (at most ~2 s)
                if not len(self.hub):
                    break
                await asyncio.sleep(0.05)
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
        self.hub.close_all(CLOSE_GOING_AWAY, "server shutting down")
        for _ in range(40):
            if not self.hub:
                break
            await asyncio.sleep(0.05)
        previous(signum, frame)

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
