"""Steady write load that keeps the books needed to prove no acknowledged write was lost.

Each writer is one student cycling through: create a session request (with an Idempotency-Key),
send a chat message (with a client_message_id), cancel the request, read their list. A write
answered 503 or lost on the wire is retried with the same key until it is acknowledged, as a
careful client would; the writer stops only between cycles. So afterwards the database must hold
exactly the acknowledged writes: every acknowledged request and message, each key once, and
nothing more.

Used by tests/test_faults.py (seconds) and bench/faults/run.py (minutes).
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg2

PASSWORD = "correct-horse-battery"
ALLOWED = {200, 201, 503}  # anything else seen under faults is a bug (a 500 above all)


@dataclass
class Books:
    """What one writer saw."""

    user_id: int
    creates: dict[str, int] = field(default_factory=dict)  # Idempotency-Key -> request_id
    messages: dict[str, int] = field(default_factory=dict)  # client_message_id -> message id
    statuses: collections.Counter = field(default_factory=collections.Counter)
    unexpected: list[str] = field(default_factory=list)
    missing_retry_after: int = 0
    transport_errors: int = 0
    acks: list[float] = field(default_factory=list)  # monotonic time of each acknowledged write
    failures: list[float] = field(default_factory=list)  # monotonic time of each retried attempt
    latencies: list[float] = field(default_factory=list)


def register(http: httpx.Client, role: str, tag: str) -> dict[str, Any]:
    body = {
        "email": f"{tag}-{role}-{uuid.uuid4().hex[:10]}@example.com",
        "password": PASSWORD,
        "first_name": "Load",
        "father_name": role.title(),
        "roles": [role],
    }
    response = http.post("/api/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


class Writer(threading.Thread):
    # Answers retried with the same key; behind a proxy, 502 too (an instance went away mid-request).
    retry_statuses: tuple[int, ...] = (503,)

    def __init__(
        self, base_url: str, token: str, user_id: int, tutor_id: int, package_id: int, stop: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=base_url, timeout=15, headers={"Authorization": f"Bearer {token}"})
        self.tutor_id, self.package_id = tutor_id, package_id
        self.stop = stop
        self.books = Books(user_id)
        self.give_up_after = 60.0  # a write still unacknowledged after this is reported, not hidden

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.cycle()
        finally:
            self.http.close()

    def cycle(self) -> None:
        key = uuid.uuid4().hex
        body = {
            "tutor_id": self.tutor_id,
            "package_id": self.package_id,
            "schedule_type": "recurring",
            "days": ["Monday"],
            "start_time": "09:00",
            "end_time": "10:00",
        }
        created = self.until_done("POST", "/api/session-requests", body, {"Idempotency-Key": key})
        if created is None:
            return
        self.books.creates[key] = created["request_id"]
        client_id = uuid.uuid4().hex
        message = {
            "conversation_id": created["conversation_id"],
            "content": "ping",
            "client_message_id": client_id,
        }
        sent = self.until_done("POST", "/api/chat/messages", message)
        if sent is not None:
            self.books.messages[client_id] = sent["message"]["id"]
        # A retried cancel whose first attempt committed answers 409 (no longer pending): done too.
        self.until_done("POST", f"/api/session-requests/{created['request_id']}/cancel", {}, done=(200, 409))
        self.until_done("GET", "/api/session-requests/my-requests?limit=5", None)

    def until_done(
        self,
        method: str,
        path: str,
        body: dict | None,
        headers: dict[str, str] | None = None,
        done: tuple[int, ...] = (200, 201),
    ) -> Any:
        """Send until answered with a status in `done`; retries 503s and lost connections."""
        deadline = time.monotonic() + self.give_up_after
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                response = self.http.request(method, path, json=body, headers=headers)
            except httpx.TransportError:
                self.books.transport_errors += 1
                self.books.failures.append(time.monotonic())
                time.sleep(0.1)
                continue
            self.books.latencies.append(time.monotonic() - started)
            status = response.status_code
            self.books.statuses[status] += 1
            if status in done:
                self.books.acks.append(time.monotonic())
                return response.json()
            if status in self.retry_statuses:
                self.books.failures.append(time.monotonic())
                if status == 503 and "retry-after" not in response.headers:
                    self.books.missing_retry_after += 1
                # Honour Retry-After, capped so that the run measures the service, not the client.
                time.sleep(min(float(response.headers.get("retry-after", 1)), 0.5))
                continue
            self.books.unexpected.append(f"{method} {path} -> {status} {response.text[:300]}")
            return None
        self.books.unexpected.append(f"{method} {path}: not acknowledged within {self.give_up_after}s")
        return None


class Probe(threading.Thread):
    """GET /api/me every 50 ms: when the service answered what, for the recovery time."""

    def __init__(self, base_url: str, token: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base_url, self.token, self.stop = base_url, token, stop
        self.seen: list[tuple[float, int]] = []

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base_url, timeout=15, headers=headers) as http:
            while not self.stop.is_set():
                try:
                    status = http.get("/api/me").status_code
                except httpx.TransportError:
                    status = 0
                self.seen.append((time.monotonic(), status))
                time.sleep(0.05)

    def first_ok_after(self, moment: float) -> float | None:
        return next((t for t, status in self.seen if t >= moment and status == 200), None)


class Load:
    """`writers` students writing against one tutor's package, and a probe."""

    def __init__(self, base_url: str, writers: int, tag: str = "load") -> None:
        self.base_url = base_url
        self.stop = threading.Event()
        with httpx.Client(base_url=base_url, timeout=30) as http:
            tutor = register(http, "tutor", tag)
            package = http.post(
                "/api/tutor/packages",
                json={"name": "Load package", "hourly_rate": 250},
                headers={"Authorization": f"Bearer {tutor['access_token']}"},
            )
            assert package.status_code == 201, package.text
            students = [register(http, "student", tag) for _ in range(writers)]
        tutor_id = tutor["user"]["role_ids"]["tutor"]
        self.writers = [
            Writer(base_url, s["access_token"], s["user"]["id"], tutor_id, package.json()["id"], self.stop)
            for s in students
        ]
        self.probe = Probe(base_url, students[0]["access_token"], self.stop)

    def __enter__(self) -> Load:
        for thread in (*self.writers, self.probe):
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def finish(self) -> None:
        self.stop.set()
        for thread in (*self.writers, self.probe):
            thread.join(90)

    def acks(self) -> int:
        return sum(len(w.books.acks) for w in self.writers)

    def wait_for_acks(self, count: int, timeout: float = 30) -> None:
        target = self.acks() + count
        deadline = time.monotonic() + timeout
        while self.acks() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} acknowledged writes in {timeout}s")
            time.sleep(0.02)

    def statuses(self) -> collections.Counter:
        total: collections.Counter = collections.Counter()
        for writer in self.writers:
            total += writer.books.statuses
        return total

    def problems(self) -> list[str]:
        found = []
        for writer in self.writers:
            found += writer.books.unexpected
            if writer.books.missing_retry_after:
                found.append(f"{writer.books.missing_retry_after} answers 503 without Retry-After")
        bad = {status: n for status, n in self.statuses().items() if status not in ALLOWED | {409}}
        if bad:
            found.append(f"statuses outside {sorted(ALLOWED)}: {bad}")
        return found

    def recovery_after(self, moment: float) -> float | None:
        """Seconds from `moment` (the database back) to the first 200 of the probe."""
        first = self.probe.first_ok_after(moment)
        return None if first is None else first - moment


def lost_or_doubled(db_url: str, writers: list[Writer]) -> list[str]:
    """Compare the writers' books with the database: [] when every acknowledged write is there,
    each idempotency key made one request, and nothing unacknowledged was written."""
    found = []
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            for writer in writers:
                books = writer.books
                cur.execute("SELECT id FROM requested_sessions WHERE requester_id = %s", (books.user_id,))
                requests = {row[0] for row in cur.fetchall()}
                acked = set(books.creates.values())
                if acked - requests:
                    found.append(
                        f"user {books.user_id}: acknowledged requests lost: {sorted(acked - requests)}"
                    )
                if requests - acked:
                    found.append(
                        f"user {books.user_id}: requests nobody acknowledged: {sorted(requests - acked)}"
                    )
                if len(acked) != len(books.creates):
                    found.append(f"user {books.user_id}: two keys answered with one request")
                cur.execute(
                    "SELECT key, (response->>'request_id')::int FROM idempotency_keys WHERE user_id = %s",
                    (books.user_id,),
                )
                stored = dict(cur.fetchall())
                for key, request_id in books.creates.items():
                    if stored.get(key) != request_id:
                        found.append(
                            f"user {books.user_id}: key {key} stored {stored.get(key)}, saw {request_id}"
                        )
                cur.execute(
                    "SELECT client_message_id, count(*), min(id) FROM chat_messages"
                    " WHERE sender_user_id = %s AND message_type = 'text' GROUP BY client_message_id",
                    (books.user_id,),
                )
                messages = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
                for client_id, message_id in books.messages.items():
                    if messages.get(client_id) != (1, message_id):
                        found.append(f"user {books.user_id}: message {client_id}: {messages.get(client_id)}")
                if set(messages) - set(books.messages):
                    found.append(f"user {books.user_id}: messages nobody acknowledged")
    finally:
        conn.close()
    return found


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
