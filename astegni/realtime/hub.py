"""The open WebSockets of this process, by user: each with a bounded queue, so that fan-out only
enqueues and never waits for a client, and the close codes the server ends them with.

A socket whose queue is full is closed with 1013; a user's sockets past the per-process limit are
closed oldest first with 4408. Serving a socket (its reader and writer) is in endpoint.py.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

# Close codes. 4401/4403 mirror HTTP 401/403 (the 4000-4999 range is the application's).
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_GOING_AWAY = 1001  # server shutting down
CLOSE_RESTART = 1012  # the listener reconnected: events may have been missed, reconnect + catch up
CLOSE_TRY_AGAIN = 1013  # too slow to keep up, or delivery unavailable right now
CLOSE_TOO_BIG = 1009  # a frame over endpoint.MAX_FRAME_BYTES
CLOSE_TOO_MANY = 4408  # the user opened more sockets than allowed; this was the oldest


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
