"""WebSocket clients of the chat socket: a real server's (websockets) and the in-process app's
(TestClient), read past heartbeats."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

WAIT = 15  # seconds to wait for an expected frame
HEARTBEATS = ("ping", "pong")


def _receive(ws: Any, timeout: float) -> dict:
    if isinstance(ws, ClientConnection):
        return json.loads(ws.recv(timeout=timeout))
    return ws.receive_json()  # the TestClient's socket: it has no timeout of its own


def next_event(ws: Any, type: str | None = None, timeout: float = WAIT) -> dict:
    """The next event that is not a heartbeat; with `type`, asserts that it is one of that type."""
    while True:
        event = _receive(ws, timeout)
        if event["type"] not in HEARTBEATS:
            break
    if type is not None:
        assert event["type"] == type, event
    return event


@contextlib.contextmanager
def open_socket(
    port: int, access_token: str | None = None, query: str = "", ready: bool = False
) -> Iterator[ClientConnection]:
    """A socket to the real server on `port`, authenticated by its first frame (never the URL)
    when a token is given; with ready=True, once subscribed (every later commit reaches it)."""
    url = f"ws://127.0.0.1:{port}/api/chat/ws{query}"
    with connect(url, open_timeout=WAIT, max_size=None) as ws:
        if access_token is not None:
            ws.send(json.dumps({"type": "auth", "token": access_token}))
        if ready:
            next_event(ws, "ready")
        yield ws


def close_code(ws: Any) -> int:
    """The code the server closes the socket with, reading (and dropping) whatever comes before."""
    if not isinstance(ws, ClientConnection):
        with pytest.raises(WebSocketDisconnect) as disconnect:
            while True:
                ws.receive_text()
        return disconnect.value.code
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=WAIT)
    return info.value.rcvd.code


def connect_client(client: TestClient, user: Any, **params: Any) -> Any:
    """The in-process app's socket, as `user` (its token in the query string, which the app also
    accepts), with `params` as further query parameters."""
    query = "&".join(f"{k}={v}" for k, v in ({"token": user.token} | params).items())
    return client.websocket_connect(f"/api/chat/ws?{query}")


def subscribed(stack: contextlib.ExitStack, port: int, access_token: str) -> ClientConnection:
    """open_socket(ready=True), closed with the stack."""
    return stack.enter_context(open_socket(port, access_token, ready=True))
