"""/api/chat/ws: authenticates a WebSocket, hands it to the process's hub (hub.py) and serves it.

The pages authenticate with a first frame `{"type": "auth", "token": ...}`, so that no token is
ever in a URL; `?token=` is still accepted for older clients (astegni/core/log_redaction.py keeps
it out of the logs).

A served socket runs a writer (draining its queue; a send that stalls closes it with 1013), a
reader (pings, fresh tokens; a frame over 64 KiB closes it with 1009) and a timer that closes it
with 4401 when its token expires, unless the client sent a fresh one.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketState

from astegni.accounts.principal import load_principal
from astegni.core.deps import names_another_user
from astegni.core.errors import AppError, Unauthorized
from astegni.core.security import Claims, decode_token
from astegni.realtime.hub import (
    CLOSE_FORBIDDEN,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    Hub,
    Socket,
)
from astegni.realtime.service import Realtime

router = APIRouter(tags=["chat"])
AUTH_FRAME_SECONDS = 5.0
# Client frames are small JSON documents (auth, ping); uvicorn refuses larger ones too (app.py).
MAX_FRAME_BYTES = 64 * 1024
PONG = json.dumps({"type": "pong"})


class _TooBig(Exception):
    pass


@router.websocket("/api/chat/ws")
async def chat_socket(websocket: WebSocket) -> None:
    """Events for the token's user: a first frame `{"type": "auth", "token": ...}` within 5 s
    (or `?token=<access token>`). Bad token or deactivated user: close 4401; the socket also
    closes with 4401 when its token expires, unless the client sent a fresh token of the same
    user in another `auth` frame. Frames over 64 KiB: close 1009. After a `{"type": "ready"}`
    frame every event committed from then on arrives as `{"type", "data"}`."""
    app = websocket.app
    realtime: Realtime = app.state.realtime
    await websocket.accept()
    try:
        token = websocket.query_params.get("token") or await _auth_frame(websocket)
    except _TooBig:
        await close_quietly(websocket, CLOSE_TOO_BIG, "frame too big")
        return
    if token is None:
        await close_quietly(websocket, CLOSE_UNAUTHORIZED, "authentication required")
        return

    async def authenticate(token: str) -> Claims:
        claims = decode_token(app.state.settings, token)
        await app.state.db.run(load_principal, claims)
        return claims

    try:
        claims = decode_token(app.state.settings, token)
        if names_another_user(websocket.query_params, claims.user_id):
            await close_quietly(websocket, CLOSE_FORBIDDEN, "user_id is not the token's user")
            return
        await app.state.db.run(load_principal, claims)
    except Unauthorized:
        await close_quietly(websocket, CLOSE_UNAUTHORIZED, "invalid token")
        return
    except AppError:
        await close_quietly(websocket, CLOSE_TRY_AGAIN, "database unavailable")
        return
    if not await realtime.wait_listening(5):
        await close_quietly(websocket, CLOSE_TRY_AGAIN, "real-time delivery unavailable")
        return
    socket = Socket(websocket, claims.user_id, realtime.queue_size, expires=claims.expires)
    socket.offer(json.dumps({"type": "ready", "data": {"user_id": claims.user_id}}, separators=(",", ":")))
    await serve_socket(realtime.hub, socket, realtime.send_timeout, authenticate)


async def _auth_frame(websocket: WebSocket) -> str | None:
    """The token of the first frame, if it is an auth frame; None for anything else."""
    with anyio.move_on_after(AUTH_FRAME_SECONDS):
        try:
            frame = await receive_frame(websocket)
        except RuntimeError:  # the client went away mid-handshake
            return None
        if frame is None:
            return None
        if oversized(frame):
            raise _TooBig
        body = parse_frame(frame)
        token = body.get("token")
        if body.get("type") == "auth" and isinstance(token, str):
            return token
    return None


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
