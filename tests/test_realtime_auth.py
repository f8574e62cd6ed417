"""The WebSocket's authentication and limits against a real server process: tokens never in its
log, sockets that outlive their token, frame size, sockets per user."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import ClientConnection

from tests.support.live import LiveServer, token
from tests.support.polling import eventually
from tests.support.ws import WAIT, close_code, next_event, open_socket

MAX_SOCKETS = 3
_emails = itertools.count(1)


@pytest.fixture(scope="module")
def server(shared_db: str) -> Iterator[LiveServer]:
    live = LiveServer(shared_db, LOG_LEVEL="debug", WS_MAX_SOCKETS_PER_USER=str(MAX_SOCKETS))
    yield live
    live.stop()


def register(server: LiveServer) -> dict:
    body = {
        "email": f"ws-auth{next(_emails)}@example.com",
        "password": "correct-horse-battery",
        "first_name": "W",
        "father_name": "S",
        "roles": ["student"],
    }
    response = httpx.post(f"{server.url}/api/register", json=body, timeout=20)
    assert response.status_code == 201, response.text
    return response.json()


def pong(ws: ClientConnection) -> None:
    ws.send(json.dumps({"type": "ping"}))
    while json.loads(ws.recv(timeout=WAIT))["type"] != "pong":
        pass


@pytest.mark.slow
def test_a_token_in_the_url_never_reaches_the_log(server):
    login = register(server)
    with open_socket(server.port, query=f"?token={login['access_token']}") as ws:
        assert next_event(ws)["type"] == "ready"
    # A token-bearing URL over HTTP too, and a refresh token in a query string.
    httpx.get(f"{server.url}/api/me?token={login['access_token']}&refresh_token={login['refresh_token']}")
    eventually(
        lambda: "/api/chat/ws?token=[redacted]" in server.log_path.read_text(),
        WAIT,
        what="the socket's accepted line in the log",
    )
    log = server.log_path.read_text()
    assert login["access_token"] not in log
    assert login["refresh_token"] not in log
    # The log is at debug level: the signature part alone does not appear either.
    assert login["access_token"].rsplit(".", 1)[1] not in log


@pytest.mark.slow
def test_the_socket_closes_with_4401_when_its_token_expires(server):
    user_id = register(server)["user"]["id"]
    with open_socket(server.port, token(user_id, lifetime=2)) as ws:
        assert next_event(ws)["type"] == "ready"
        started = time.monotonic()
        assert close_code(ws) == 4401
        assert time.monotonic() - started < 5


@pytest.mark.slow
def test_a_fresh_token_of_the_same_user_keeps_the_socket_open(server):
    user_id = register(server)["user"]["id"]
    short = token(user_id, lifetime=2)
    with open_socket(server.port, short) as ws:
        assert next_event(ws)["type"] == "ready"
        ws.send(json.dumps({"type": "auth", "token": token(user_id, lifetime=600)}))
        expired_at = time.time() + 3
        while time.time() < expired_at:  # past the first token's expiry, still answering
            pong(ws)
        pong(ws)


@pytest.mark.slow
def test_a_token_of_another_user_closes_the_socket(server):
    user_id, other_id = register(server)["user"]["id"], register(server)["user"]["id"]
    with open_socket(server.port, token(user_id)) as ws:
        assert next_event(ws)["type"] == "ready"
        ws.send(json.dumps({"type": "auth", "token": token(other_id)}))
        assert close_code(ws) == 4401


@pytest.mark.slow
def test_a_frame_over_64_kib_closes_with_1009(server):
    user_id = register(server)["user"]["id"]
    with open_socket(server.port, token(user_id)) as ws:
        assert next_event(ws)["type"] == "ready"
        ws.send(json.dumps({"type": "ping", "pad": "x" * 70_000}))
        assert close_code(ws) == 1009


@pytest.mark.slow
def test_an_oversized_auth_frame_closes_with_1009_before_authentication(server):
    with open_socket(server.port, "x" * 2_000_000) as ws:
        assert close_code(ws) == 1009


@pytest.mark.slow
def test_past_the_limit_the_oldest_socket_closes_with_4408(server):
    user_id = register(server)["user"]["id"]
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(MAX_SOCKETS + 1):
            ws = stack.enter_context(open_socket(server.port, token(user_id)))
            assert next_event(ws)["type"] == "ready"
            sockets.append(ws)
        assert close_code(sockets[0]) == 4408
        for ws in sockets[1:]:
            pong(ws)


# The endpoint refuses big frames itself too, for servers run without uvicorn's ws_max_size
# (the TestClient has no frame limit of its own).


def test_the_endpoint_closes_a_big_frame_with_1009_itself(client, factory):
    user = factory.student()
    with client.websocket_connect("/api/chat/ws") as ws:
        ws.send_json({"type": "auth", "token": user.token})
        assert next_event(ws, "ready")
        ws.send_text(json.dumps({"type": "ping", "pad": "é" * 40_000}))  # 80 000 bytes in UTF-8
        assert close_code(ws) == 1009
    with client.websocket_connect("/api/chat/ws") as ws:
        ws.send_bytes(b"x" * 70_000)
        assert close_code(ws) == 1009
