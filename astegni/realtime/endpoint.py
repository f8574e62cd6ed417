"""/api/chat/ws: authenticates a WebSocket and hands it to the process's hub (realtime.py).

The pages authenticate with a first frame `{"type": "auth", "token": ...}`, so that no token is
ever in a URL; `?token=` is still accepted for older clients (log_redaction.py keeps it out of
the logs).
"""

from __future__ import annotations

import json

import anyio
from fastapi import APIRouter, WebSocket

from astegni.accounts.principal import load_principal
from astegni.core.deps import names_another_user
from astegni.core.errors import AppError, Unauthorized
from astegni.core.security import Claims, decode_token
from astegni.realtime.service import (
    CLOSE_FORBIDDEN,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    Realtime,
    Socket,
    close_quietly,
    oversized,
    parse_frame,
    receive_frame,
    serve_socket,
)

router = APIRouter(tags=["chat"])
AUTH_FRAME_SECONDS = 5.0


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
