"""The WebSocket in one process: authentication, who receives what, after-commit only, slow clients."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time

import psycopg2
import pytest

from astegni.core import housekeeping
from astegni.core.database import Database
from astegni.core.events import publish
from astegni.realtime.endpoint import serve_socket
from astegni.realtime.hub import CLOSE_TRY_AGAIN, Hub, Socket
from astegni.realtime.listener import Listener
from tests.frozen_proxy import frozen_proxy
from tests.pg import end_sessions
from tests.support.chat import open_conversation, send
from tests.support.live import token
from tests.support.polling import eventually_async
from tests.support.ws import close_code, connect_client, next_event

# ---------------------------------------------------------------------------- authentication


def test_refuses_bad_tokens_with_4401(client, db, factory):
    user = factory.student()
    for bad in [
        "garbage",
        token(user.id, lifetime=-10),  # expired
        token(user.id, secret="another-secret-key-that-is-long-enough-000000"),
        token(user.id, type="refresh"),
        token(999999),  # no such user
        user.refresh_token,
    ]:
        with client.websocket_connect(f"/api/chat/ws?token={bad}") as ws:
            assert close_code(ws) == 4401, bad
    with db.transaction() as cur:
        cur.execute("UPDATE users SET is_active = false WHERE id = %s", (user.id,))
    with connect_client(client, user) as ws:
        assert close_code(ws) == 4401


def test_auth_frame_instead_of_query_token(client, factory):
    user = factory.student()
    with client.websocket_connect("/api/chat/ws") as ws:
        ws.send_json({"type": "auth", "token": user.token})
        assert next_event(ws, "ready")["data"] == {"user_id": user.id}
    for first_frame in [{"type": "auth", "token": "garbage"}, {"type": "hello"}, {"type": "auth"}]:
        with client.websocket_connect("/api/chat/ws") as ws:
            ws.send_json(first_frame)
            assert close_code(ws) == 4401
    with client.websocket_connect("/api/chat/ws") as ws:
        ws.send_text("not json")
        assert close_code(ws) == 4401


def test_foreign_user_id_is_refused(client, factory):
    user, other = factory.student(), factory.student()
    with connect_client(client, user, user_id=other.id) as ws:
        assert close_code(ws) == 4403
    with connect_client(client, user, user_id=user.id) as ws:
        assert next_event(ws, "ready")


def test_ping_is_answered(client, factory):
    user = factory.student()
    with connect_client(client, user) as ws:
        next_event(ws, "ready")
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}


# ---------------------------------------------------------------------------- who receives what


def test_every_tab_of_every_participant_and_never_an_outsider(client, factory):
    student, tutor, outsider = factory.student(), factory.tutor(packages=0), factory.student()
    cid = open_conversation(client, student, tutor)
    own_cid = open_conversation(client, outsider, tutor)
    with (
        connect_client(client, tutor) as tab1,
        connect_client(client, tutor) as tab2,
        connect_client(client, student) as student_ws,
        connect_client(client, outsider) as outsider_ws,
    ):
        for ws in (tab1, tab2, student_ws, outsider_ws):
            next_event(ws, "ready")
        message = send(client, student, cid, "for the tutor")
        for ws in (tab1, tab2, student_ws):
            event = next_event(ws)
            assert event == {"type": "message.created", "data": {"conversation_id": cid, "message": message}}
        # The outsider's next event is their own conversation's, so the first never reached them
        # (one listener delivers in commit order to every socket).
        own = send(client, tutor, own_cid, "for the outsider")
        assert next_event(outsider_ws)["data"]["message"]["id"] == own["id"]


def test_edit_delete_and_read_events(client, factory):
    student, tutor = factory.student(), factory.tutor(packages=0)
    cid = open_conversation(client, student, tutor)
    with connect_client(client, student) as student_ws, connect_client(client, tutor) as tutor_ws:
        next_event(student_ws, "ready"), next_event(tutor_ws, "ready")
        message = send(client, student, cid, "draft")
        assert next_event(tutor_ws)["type"] == "message.created"
        assert next_event(student_ws)["type"] == "message.created"

        edited = client.put(
            f"/api/chat/messages/{message['id']}", json={"content": "final"}, headers=student.headers
        )
        event = next_event(tutor_ws)
        assert event["type"] == "message.updated"
        assert event["data"]["message"] == edited.json()["message"]
        assert next_event(student_ws)["type"] == "message.updated"

        client.post(
            f"/api/chat/conversations/{cid}/read",
            json={"last_read_message_id": message["id"]},
            headers=tutor.headers,
        )
        expected = {"conversation_id": cid, "user_id": tutor.id, "last_read_message_id": message["id"]}
        assert next_event(student_ws) == {"type": "read.updated", "data": expected}
        assert next_event(tutor_ws) == {"type": "read.updated", "data": expected}
        # A marker that does not move sends nothing: the next event is the delete.
        client.post(
            f"/api/chat/conversations/{cid}/read",
            json={"last_read_message_id": message["id"]},
            headers=tutor.headers,
        )
        client.delete(f"/api/chat/messages/{message['id']}", headers=student.headers)
        event = next_event(tutor_ws)
        assert event["type"] == "message.deleted"
        assert event["data"]["message"]["is_deleted"] is True
        assert event["data"]["message"]["content"] is None


def test_a_retried_send_is_announced_once(client, factory):
    student, tutor = factory.student(), factory.tutor(packages=0)
    cid = open_conversation(client, student, tutor)
    with connect_client(client, tutor) as ws:
        next_event(ws, "ready")
        first = send(client, student, cid, "once", client_message_id="k1")
        send(client, student, cid, "once", client_message_id="k1")
        second = send(client, student, cid, "twice")
        assert next_event(ws)["data"]["message"]["id"] == first["id"]
        assert next_event(ws)["data"]["message"]["id"] == second["id"]


# ---------------------------------------------------------------------------- after commit only


def test_no_event_for_a_rolled_back_transaction(client, db, factory):
    user = factory.student()
    with connect_client(client, user) as ws:
        next_event(ws, "ready")
        with pytest.raises(RuntimeError), db.transaction() as cur:
            publish(cur, "session_request.updated", [user.id], {"n": "rolled back"})
            raise RuntimeError("abort")
        with db.transaction() as cur:
            publish(cur, "session_request.updated", [user.id], {"n": "committed"})
        assert next_event(ws) == {"type": "session_request.updated", "data": {"n": "committed"}}


def test_large_events_travel_by_reference(client, db, factory):
    user = factory.student()
    big = {"blob": "é" * 6000}  # 12 kB of UTF-8: over the NOTIFY payload limit
    with connect_client(client, user) as ws:
        next_event(ws, "ready")
        with db.transaction() as cur:
            publish(cur, "session_request.updated", [user.id], big)
        assert next_event(ws) == {"type": "session_request.updated", "data": big}
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM realtime_events")
        assert cur.fetchone()["n"] == 1  # kept for the sweep's purge


def test_heartbeat_drops_sockets_of_deactivated_users(client, db, factory):
    user, other = factory.student(), factory.student()
    with connect_client(client, user) as ws, connect_client(client, other) as other_ws:
        next_event(ws, "ready"), next_event(other_ws, "ready")
        with db.transaction() as cur:
            cur.execute("UPDATE users SET is_active = false WHERE id = %s", (user.id,))
        client.portal.call(client.app.state.realtime.heartbeat)
        assert close_code(ws) == 4401
        assert other_ws.receive_json() == {"type": "ping"}  # still open


# ---------------------------------------------------------------------------- slow clients


def run_in_fresh_loop(scenario):
    """asyncio.run on a thread of its own: another test (a browser driver) may leave a loop
    running on the main thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario()).result()


class FakeSocket:
    """A client at the end of a socket: records what it is sent; a stalled one never drains."""

    def __init__(self, stalled: bool = False) -> None:
        self.stalled = stalled
        self.received: list[str] = []
        self.closed_with: int | None = None
        self.gone = asyncio.Event()

    async def send_text(self, text: str) -> None:
        if self.stalled:
            await asyncio.Event().wait()
        self.received.append(text)

    async def receive(self) -> dict:
        await self.gone.wait()
        return {"type": "websocket.disconnect"}

    async def close(self, code: int, reason: str = "") -> None:
        self.closed_with = code


def test_a_slow_client_is_dropped_and_never_blocks_the_others():
    async def scenario() -> tuple[FakeSocket, FakeSocket]:
        hub = Hub()
        slow, fast = FakeSocket(stalled=True), FakeSocket()
        tasks = [
            asyncio.create_task(serve_socket(hub, Socket(slow, 1, queue_size=8), send_timeout=60)),
            asyncio.create_task(serve_socket(hub, Socket(fast, 1, queue_size=8), send_timeout=60)),
        ]
        await asyncio.sleep(0)
        for i in range(100):
            hub.dispatch([1], json.dumps({"n": i}))
            await asyncio.sleep(0)  # the fast client's writer keeps up; the slow one never does
        await asyncio.wait_for(tasks[0], 5)  # the slow socket's serve ends: it was closed
        fast.gone.set()
        await asyncio.wait_for(tasks[1], 5)
        assert len(hub) == 0
        return slow, fast

    slow, fast = run_in_fresh_loop(scenario)
    assert slow.closed_with == CLOSE_TRY_AGAIN
    assert [json.loads(t)["n"] for t in fast.received] == list(range(100))


def test_a_stalled_send_times_out_and_closes():
    async def scenario() -> FakeSocket:
        hub = Hub()
        stalled = FakeSocket(stalled=True)
        task = asyncio.create_task(serve_socket(hub, Socket(stalled, 7, queue_size=8), send_timeout=0.05))
        await asyncio.sleep(0)
        hub.dispatch([7], "{}")
        await asyncio.wait_for(task, 5)
        return stalled

    assert run_in_fresh_loop(scenario).closed_with == CLOSE_TRY_AGAIN


# ---------------------------------------------------------------------------- the listener


def notify(db_url: str, *user_ids: int) -> None:
    db = Database(db_url, pool_size=1)
    try:
        with db.transaction() as cur:
            for user_id in user_ids:
                publish(cur, "session_request.updated", [user_id], {"n": user_id})
    finally:
        db.close()


class Recorder:
    """What a Listener tells the process: the users of each event, and its states."""

    def __init__(self) -> None:
        self.delivered: list[list[int]] = []
        self.states: list[tuple[bool, bool]] = []

    def listen(self, dsn: str, **options) -> asyncio.Task:
        listener = Listener(
            dsn, lambda users, _: self.delivered.append(users), lambda *s: self.states.append(s), **options
        )
        return asyncio.create_task(listener.run())


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_the_listener_skips_events_while_no_socket_wants_them(db_url):
    async def scenario() -> Recorder:
        seen, wanted = Recorder(), False
        task = seen.listen(db_url, wanted=lambda: wanted)
        await eventually_async(lambda: seen.states == [(True, False)])
        await asyncio.to_thread(notify, db_url, 1)
        # Time for event 1 to arrive while unwanted: that it is skipped shows only by waiting.
        await asyncio.sleep(0.3)
        wanted = True
        await asyncio.to_thread(notify, db_url, 2, 3)
        await eventually_async(lambda: len(seen.delivered) == 2)
        await stop(task)
        return seen

    seen = run_in_fresh_loop(scenario)
    assert seen.delivered == [[2], [3]]
    assert seen.states[-1] == (False, False)  # stopped: no longer listening


def test_the_listener_reconnects_when_the_server_ends_its_session(db_url):
    async def scenario() -> Recorder:
        seen = Recorder()
        task = seen.listen(db_url)
        await eventually_async(lambda: seen.states == [(True, False)])
        assert await asyncio.to_thread(end_sessions, db_url, "astegni-listener") == 1
        await eventually_async(lambda: len(seen.states) == 3)
        await asyncio.to_thread(notify, db_url, 4)
        await eventually_async(lambda: seen.delivered == [[4]])
        await stop(task)
        return seen

    assert run_in_fresh_loop(scenario).states[:3] == [(True, False), (False, False), (True, True)]


def test_the_listener_notices_a_server_gone_silent_and_reconnects(db_url):
    """No error and no FIN, as from a dead host: the idle probe's reply never comes, so the
    listener drops the connection and makes a new one (after which sockets are closed with 1012)."""
    with frozen_proxy(db_url) as proxy:

        async def scenario() -> tuple[Recorder, float]:
            seen = Recorder()
            task = seen.listen(proxy.url, idle_probe_seconds=0.2, reply_timeout_seconds=0.5)
            await eventually_async(lambda: seen.states == [(True, False)])
            proxy.frozen.set()
            started = time.monotonic()
            await eventually_async(lambda: len(seen.states) == 2)
            noticed = time.monotonic() - started
            proxy.frozen.clear()
            await eventually_async(lambda: len(seen.states) == 3)
            await asyncio.to_thread(notify, db_url, 5)
            await eventually_async(lambda: seen.delivered == [[5]])
            await stop(task)
            return seen, noticed

        seen, noticed = run_in_fresh_loop(scenario)
    assert seen.states[:3] == [(True, False), (False, False), (True, True)]
    assert noticed < 2  # the probe's bound, not TCP keepalive's minute


def stored(db) -> list:
    with db.transaction() as cur:
        cur.execute("SELECT payload FROM realtime_events ORDER BY id")
        return [row["payload"] for row in cur.fetchall()]


def test_the_sweep_purges_stored_events_past_their_keep(db):
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO realtime_events (payload, created_at)
               VALUES ('{"n": "old"}', now() - interval '301 seconds'), ('{"n": "young"}', now())"""
        )
    housekeeping.sweep(db)
    assert stored(db) == [{"n": "young"}]


def test_the_listener_stays_while_stored_events_are_locked(db_url):
    """The listener reads realtime_events only for an event sent by reference: a lock on the table
    neither delays other events nor makes it reconnect, which would close every socket with 1012."""
    locker = psycopg2.connect(db_url)
    locker.cursor().execute("LOCK TABLE realtime_events")  # held until the rollback below

    async def scenario() -> Recorder:
        seen = Recorder()
        task = seen.listen(db_url, idle_probe_seconds=0.1, reply_timeout_seconds=1)
        await eventually_async(lambda: seen.states == [(True, False)])
        await asyncio.sleep(1.5)  # idle probes come and go meanwhile
        await asyncio.to_thread(notify, db_url, 6)  # the lock covers realtime_events only
        await eventually_async(lambda: seen.delivered == [[6]])
        await stop(task)
        return seen

    try:
        seen = run_in_fresh_loop(scenario)
    finally:
        locker.rollback()
        locker.close()
    assert seen.states == [(True, False), (False, False)]  # no reconnect before the stop
