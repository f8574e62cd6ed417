"""The WebSocket across real server processes: two `python app.py` on one database behave as one
service; shutdown closes sockets with 1001; the listener survives losing its connection."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from websockets.sync.client import connect

from tests.pg import end_sessions
from tests.support.live import LiveServer, live_servers
from tests.support.ws import WAIT, close_code, next_event, subscribed

pytestmark = pytest.mark.slow  # real server processes

_emails = itertools.count(1)


@pytest.fixture(scope="module")
def servers(shared_db: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two server processes sharing one database (module-wide: starting them is the slow part)."""
    with live_servers(shared_db, {}, {}) as (a, b):
        yield a, b


class User:
    def __init__(self, server: LiveServer, roles: tuple[str, ...] = ("student",)) -> None:
        n = next(_emails)
        response = httpx.post(
            f"{server.url}/api/register",
            json={
                "email": f"proc{n}@example.com",
                "password": "correct-horse-battery",
                "first_name": "Proc",
                "father_name": str(n),
                "roles": list(roles),
            },
            timeout=20,
        )
        assert response.status_code == 201, response.text
        self.id = response.json()["user"]["id"]
        self.token = response.json()["access_token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}


def post(server: LiveServer, user: User, path: str, body: dict) -> dict:
    response = httpx.post(f"{server.url}{path}", json=body, headers=user.headers, timeout=20)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_events_cross_processes_to_every_tab_and_never_to_an_outsider(servers):
    a, b = servers
    writer, reader, outsider = User(a), User(b, ("tutor",)), User(b)
    cid = post(a, writer, "/api/chat/conversations", {"participant_user_ids": [reader.id]})["id"]
    own_cid = post(b, outsider, "/api/chat/conversations", {"participant_user_ids": [reader.id]})["id"]
    with ExitStack() as stack:
        tab_on_b, tab_on_a = subscribed(stack, b.port, reader.token), subscribed(stack, a.port, reader.token)
        writer_on_b, outsider_on_b = (
            subscribed(stack, b.port, writer.token),
            subscribed(stack, b.port, outsider.token),
        )
        message = post(a, writer, "/api/chat/messages", {"conversation_id": cid, "content": "across"})[
            "message"
        ]
        for ws in (tab_on_b, tab_on_a, writer_on_b):
            assert next_event(ws) == {
                "type": "message.created",
                "data": {"conversation_id": cid, "message": message},
            }
        # Written on B, read on A.
        read = {"last_read_message_id": message["id"]}
        post(b, reader, f"/api/chat/conversations/{cid}/read", read)
        assert next_event(tab_on_a)["type"] == "read.updated"
        # The outsider's first event is from their own conversation: the others never reached them.
        own = post(a, outsider, "/api/chat/messages", {"conversation_id": own_cid, "content": "mine"})
        assert next_event(outsider_on_b)["data"]["message"]["id"] == own["message"]["id"]


def test_bad_token_is_refused_by_a_live_server(servers):
    a, _ = servers
    with connect(f"ws://127.0.0.1:{a.port}/api/chat/ws?token=nope", open_timeout=WAIT) as ws:
        assert close_code(ws) == 4401


def test_a_live_server_declines_permessage_deflate(servers):
    """Offered by the client (websockets does by default), refused by the server: its zlib state
    per socket was the soak's memory growth (app.py)."""
    a, _ = servers
    with ExitStack() as stack:
        ws = subscribed(stack, a.port, User(a).token)
        assert ws.request.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


def test_listener_reconnects_after_losing_its_connection(servers, shared_db):
    """PostgreSQL ends the listener's session (as in a restart): open sockets are closed with 1012
    so their clients catch up, and a new socket receives events again."""
    a, b = servers
    writer, reader = User(a), User(b, ("tutor",))
    cid = post(a, writer, "/api/chat/conversations", {"participant_user_ids": [reader.id]})["id"]
    with ExitStack() as stack:
        ws = subscribed(stack, b.port, reader.token)
        assert end_sessions(shared_db, "astegni-listener") == 2  # one listener per process
        assert close_code(ws) == 1012
        ws = subscribed(stack, b.port, reader.token)  # answers once the listener is back
        post(a, writer, "/api/chat/messages", {"conversation_id": cid, "content": "after the storm"})
        assert next_event(ws)["data"]["message"]["content"] == "after the storm"


def test_shutdown_closes_sockets_with_1001(db_url):
    server = LiveServer(db_url)
    try:
        user = User(server)
        with ExitStack() as stack:
            first, second = (
                subscribed(stack, server.port, user.token),
                subscribed(stack, server.port, user.token),
            )
            server.process.terminate()
            assert close_code(first) == 1001
            assert close_code(second) == 1001
        assert server.process.wait(30) == 0
    finally:
        server.stop()
