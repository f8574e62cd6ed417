"""Several server processes on one database behave as one service: a `WORKERS=2` server (A) and
a separately started one (B), three processes in all. Duplicate prevention, one conversation per
pair, the per-user rate limit and WebSocket delivery hold across all of them.

(test_realtime_processes.py covers two single-worker servers and shutdown; here the point is
uvicorn's own workers, which share one listening socket, next to a separate server.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest

from tests.support.live import LiveServer, live_servers
from tests.support.remote import register, sql, tutor_with_packages
from tests.support.ws import next_event, subscribed

pytestmark = pytest.mark.slow
RATE_PER_MINUTE = 50


def workers_of(server: LiveServer) -> list[int]:
    """The pids of uvicorn's worker processes (children of `python app.py`)."""
    children = f"/proc/{server.process.pid}/task/{server.process.pid}/children"
    with open(children) as f:
        pids = [int(pid) for pid in f.read().split()]
    return [pid for pid in pids if b"spawn_main" in _cmdline(pid)]  # not multiprocessing's tracker


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def established_per_process(pids: list[int], port: int) -> dict[int, int]:
    """How many established TCP connections to `port` each process holds (from /proc)."""
    inodes: dict[str, int] = {}
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[target[8:-1]] = pid
    counts = dict.fromkeys(pids, 0)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01" and fields[9] in inodes:
                    counts[inodes[fields[9]]] += 1
    return counts


@pytest.fixture(scope="module")
def cluster(shared_db: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    env = {"REQUEST_RATE_PER_MINUTE": str(RATE_PER_MINUTE)}
    with live_servers(shared_db, env | {"WORKERS": "2"}, env) as (a, b):
        assert len(workers_of(a)) == 2
        yield a, b


def request_body(tutor: dict, package_id: int) -> dict:
    return {
        "tutor_id": tutor["role_ids"]["tutor"],
        "package_id": package_id,
        "schedule_type": "recurring",
        "days": ["Tuesday"],
        "start_time": "10:00",
        "end_time": "11:00",
    }


def spread(servers: tuple[LiveServer, ...], count: int, call) -> list[httpx.Response]:
    """count calls at once, alternating between the servers, one connection each (so that A's
    two workers share its half)."""

    def one(i: int) -> httpx.Response:
        server = servers[i % len(servers)]
        with httpx.Client(base_url=server.url, timeout=30, headers={"Connection": "close"}) as http:
            return call(http)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


# ---------------------------------------------------------------------------- invariants


def test_identical_requests_across_processes_make_one_request(cluster, shared_db):
    a, b = cluster
    tutor, (package,) = tutor_with_packages(a, 1)
    student = register(b, "student")
    body = request_body(tutor, package)
    answers = spread(
        (a, b), 30, lambda http: http.post("/api/session-requests", json=body, headers=student["headers"])
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [409] * 29, [r.text for r in answers if r.status_code not in (200, 409)]
    created = next(r.json() for r in answers if r.status_code == 200)
    assert {r.json()["existing_request_id"] for r in answers if r.status_code == 409} == {
        created["request_id"]
    }
    assert sql(
        shared_db, "SELECT count(*) FROM requested_sessions WHERE requester_id = %s", student["id"]
    ) == [(1,)]
    assert sql(
        shared_db,
        "SELECT count(*) FROM chat_messages WHERE sender_user_id = %s AND message_type = 'session_request'",
        student["id"],
    ) == [(1,)]


def test_one_conversation_per_pair_across_processes(cluster, shared_db):
    a, b = cluster
    tutor, packages = tutor_with_packages(a, 4)
    # Also a tutor, so that the tutor may open the chat before any request links the two.
    student = register(b, "student", "tutor")
    tutor_user, student_user = tutor["id"], student["id"]

    def first_contact(i: int):
        def call(http: httpx.Client) -> httpx.Response:
            if i % 3 == 0:  # the student opens the chat
                body = {"type": "direct", "participant_user_ids": [tutor_user]}
                return http.post("/api/chat/conversations", json=body, headers=student["headers"])
            if i % 3 == 1:  # the tutor opens it from the other side
                body = {"type": "direct", "participant_user_ids": [student_user]}
                return http.post("/api/chat/conversations", json=body, headers=tutor["headers"])
            body = request_body(tutor, packages[i % len(packages)])  # a request opens it too
            return http.post("/api/session-requests", json=body, headers=student["headers"])

        return call

    calls = [first_contact(i) for i in range(24)]
    answers = spread((a, b), 24, lambda http, it=iter(calls): next(it)(http))
    assert all(r.status_code in (200, 201, 409) for r in answers), [r.text for r in answers]
    ids = {r.json().get("id") or r.json().get("conversation_id") for r in answers if r.status_code < 300}
    assert len(ids) == 1, ids
    rows = sql(
        shared_db,
        """SELECT count(DISTINCT c.id) FROM conversations c
             JOIN conversation_participants p1 ON p1.conversation_id = c.id AND p1.user_id = %s
             JOIN conversation_participants p2 ON p2.conversation_id = c.id AND p2.user_id = %s
            WHERE c.type = 'direct'""",
        student_user,
        tutor_user,
    )
    assert rows == [(1,)]


def test_the_rate_limit_holds_across_processes(cluster):
    """Every attempt counts, whichever process takes it: exactly RATE_PER_MINUTE are answered
    (one 200, the rest 409 duplicates), then 429 with Retry-After."""
    a, b = cluster
    tutor, (package,) = tutor_with_packages(a, 1)
    student = register(a, "student")
    body = request_body(tutor, package)
    answers = spread(
        (a, b),
        RATE_PER_MINUTE + 10,
        lambda http: http.post("/api/session-requests", json=body, headers=student["headers"]),
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [409] * (RATE_PER_MINUTE - 1) + [429] * 10
    for limited in (r for r in answers if r.status_code == 429):
        assert 1 <= int(limited.headers["retry-after"]) <= 60


# ---------------------------------------------------------------------------- WebSocket delivery


def test_websocket_events_reach_every_worker_and_server(cluster, shared_db):
    a, b = cluster
    tutor, (package,) = tutor_with_packages(b, 1)
    student = register(a, "student")
    listeners = sql(
        shared_db,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'astegni-listener'"
        " AND datname = current_database()",
    )
    assert listeners == [(3,)]  # one LISTEN connection per process: A's two workers and B
    with ExitStack() as stack:
        on_a = [subscribed(stack, a.port, student["token"]) for _ in range(6)]
        per_worker = established_per_process(workers_of(a), a.port)
        if min(per_worker.values()) == 0:  # the kernel handed them all to one worker: add more
            on_a += [subscribed(stack, a.port, student["token"]) for _ in range(10)]
            per_worker = established_per_process(workers_of(a), a.port)
        assert min(per_worker.values()) > 0, per_worker  # sockets held by both of A's workers
        on_b = [subscribed(stack, b.port, student["token"]) for _ in range(2)]
        tutor_on_a = subscribed(stack, a.port, tutor["token"])

        # Written on B, delivered to every tab of the student on every process.
        created = httpx.post(
            f"{b.url}/api/session-requests", json=request_body(tutor, package), headers=student["headers"]
        )
        assert created.status_code == 200, created.text
        request_id, conversation_id = created.json()["request_id"], created.json()["conversation_id"]
        for ws in [*on_a, *on_b, tutor_on_a]:
            event = next_event(ws)
            assert event["type"] == "message.created"
            assert event["data"]["conversation_id"] == conversation_id

        # Answered on A (either worker): both sides hear the status change.
        answered = httpx.patch(
            f"{a.url}/api/session-requests/tutor/{request_id}",
            json={"status": "accepted"},
            headers=tutor["headers"],
        )
        assert answered.status_code == 200, answered.text
        for ws in [*on_a, *on_b, tutor_on_a]:
            # The card's update and the system line come first, then the status event.
            types = [next_event(ws)["type"] for _ in range(3)]
            assert types[-1] == "session_request.updated", types
