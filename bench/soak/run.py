"""Soak: mixed traffic against `python app.py` with WORKERS=2 for minutes; memory must stay flat.

    make soak                          # 10 minutes; or: .venv/bin/python -m bench.soak.run --minutes 1

Creates its own database (astegni_bench_*) on BENCH_DATABASE_URL's or TEST_DATABASE_URL's server
(else the embedded one), seeds students and tutors with packages in SQL, starts the server with
production settings (Argon2 cost, rate limit) and WORKERS=2, opens 200 WebSockets, and sends an
open-loop mix at --rate requests/s: logins, session requests (create; the tutor answers some),
chat sends, and reads (conversation list, messages, my-requests, a tutor's packages).

Prints the error count (a 5xx, an unexpected status, a transport error, a socket dropped), p50
and p99 per kind, the events the sockets received, and the RSS of each worker at start, after the
warm-up (the first tenth of the run) and at the end; exits 1 on any error or when a worker grew
more than 10% after the warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import random
import sys
import time
import uuid

import httpx
import psycopg2
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from astegni.core.schema import apply_schema
from astegni.core.security import access_token, hash_password
from astegni.core.settings import Settings
from tests import pg
from tests.support.live import LiveServer

SECRET = "soak-secret-key-that-is-long-enough-0123456789"
PASSWORD = "correct-horse-battery"
SETTINGS = Settings(database_url="postgresql://x", secret_key=SECRET, access_token_minutes=600)
MAX_GROWTH = 0.10

SEED_SQL = """
INSERT INTO users (email, password_hash, first_name, father_name, roles, active_role)
SELECT 'soak-student' || g || '@example.com', %(hash)s, 'Student', 'Number ' || g, '{student}', 'student'
  FROM generate_series(1, %(students)s) g;
INSERT INTO student_profiles (user_id)
SELECT id FROM users WHERE email LIKE 'soak-student%%';
INSERT INTO users (email, password_hash, first_name, father_name, roles, active_role)
SELECT 'soak-tutor' || g || '@example.com', %(hash)s, 'Tutor', 'Number ' || g, '{tutor}', 'tutor'
  FROM generate_series(1, %(tutors)s) g;
INSERT INTO tutor_profiles (user_id, bio)
SELECT id, 'Soak tutor' FROM users WHERE email LIKE 'soak-tutor%%';
INSERT INTO tutor_packages (tutor_id, name, description, hourly_rate, schedule_days, start_time, end_time)
SELECT t.id, 'Package ' || g, 'Weekly sessions', 100 + g * 50, '{Monday,Wednesday}', '14:00', '16:00'
  FROM tutor_profiles t CROSS JOIN generate_series(1, 3) g;
"""

# Requests per second of each kind, as shares of --rate.
MIX = {
    "read_conversations": 20,
    "read_messages": 15,
    "read_my_requests": 10,
    "read_packages": 10,
    "chat_send": 27,
    "create_request": 12,
    "answer_request": 5,
    "login": 1,
}
# Statuses that are the application working as designed for a kind; anything else is an error.
EXPECTED = collections.defaultdict(lambda: {200}) | {
    "chat_send": {201},
    "create_request": {200, 409},
    "answer_request": {200, 409},
}


def worker_pids(server: LiveServer) -> list[int]:
    pid = server.process.pid
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(p) for p in f.read().split()]
    workers = []
    for child in children:
        with open(f"/proc/{child}/cmdline", "rb") as f:
            if b"spawn_main" in f.read():  # uvicorn's workers, not multiprocessing's tracker
                workers.append(child)
    return workers or [pid]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


async def steady_rss(pids: list[int]) -> dict[int, int]:
    """The least RSS of each worker over a second: a login in flight holds Argon2's 64 MiB for a
    moment (mmap'd, given back at once), which is not growth."""
    samples = []
    for _ in range(10):
        samples.append({pid: rss_kib(pid) for pid in pids})
        await asyncio.sleep(0.1)
    return {pid: min(sample[pid] for sample in samples) for pid in pids}


def seed(url: str, students: int, tutors: int) -> tuple[list[dict], list[dict]]:
    conn = psycopg2.connect(url)
    try:
        apply_schema(conn)
        with conn, conn.cursor() as cur:
            production = Settings(database_url="postgresql://x", secret_key=SECRET)
            params = {"hash": hash_password(production, PASSWORD), "students": students, "tutors": tutors}
            cur.execute(SEED_SQL, params)
            cur.execute(
                "SELECT u.id, u.email, s.id FROM users u"
                " JOIN student_profiles s ON s.user_id = u.id ORDER BY u.id"
            )
            studs = [{"user_id": r[0], "email": r[1], "student_id": r[2]} for r in cur.fetchall()]
            cur.execute(
                "SELECT u.id, t.id, array_agg(p.id ORDER BY p.id) FROM users u"
                " JOIN tutor_profiles t ON t.user_id = u.id JOIN tutor_packages p ON p.tutor_id = t.id"
                " GROUP BY u.id, t.id ORDER BY u.id"
            )
            tuts = [{"user_id": r[0], "tutor_id": r[1], "packages": r[2]} for r in cur.fetchall()]
    finally:
        conn.close()
    for user in studs:
        user["headers"] = _auth(user["user_id"], "student")
    for user in tuts:
        user["headers"] = _auth(user["user_id"], "tutor")
    return studs, tuts


def _auth(user_id: int, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token(SETTINGS, user_id, role)}"}


class Soak:
    def __init__(self, base_url: str, students: list[dict], tutors: list[dict]) -> None:
        self.base_url = base_url
        self.students, self.tutors = students, tutors
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.errors: collections.Counter = collections.Counter()
        self.error_samples: list[str] = []
        self.conversations: dict[int, list[int]] = collections.defaultdict(list)  # student -> ids
        self.events = 0
        self.skipped = 0
        self.sockets_open = 0
        self.stop = asyncio.Event()

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 20 and what not in self.error_samples:
            self.error_samples.append(f"{kind}: {what}")

    async def call(
        self, http: httpx.AsyncClient, kind: str, method: str, path: str, **kw
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            self.error(kind, f"{method} {path}: {exc!r}")
            return None
        self.latency[kind].append(time.perf_counter() - started)
        if response.status_code not in EXPECTED[kind]:
            self.error(kind, f"{method} {path} -> {response.status_code} {response.text[:200]}")
            return None
        return response

    async def one(self, http: httpx.AsyncClient, kind: str) -> None:
        student = random.choice(self.students)
        headers = student["headers"]
        convs = self.conversations[student["user_id"]]
        if kind == "read_conversations":
            await self.call(http, kind, "GET", "/api/chat/conversations?limit=20", headers=headers)
        elif kind == "read_messages":
            if convs:
                path = f"/api/chat/messages/{random.choice(convs)}?limit=50"
                await self.call(http, kind, "GET", path, headers=headers)
            else:
                await self.call(http, kind, "GET", "/api/me", headers=headers)
        elif kind == "read_my_requests":
            await self.call(http, kind, "GET", "/api/session-requests/my-requests?limit=20", headers=headers)
        elif kind == "read_packages":
            tutor = random.choice(self.tutors)
            path = f"/api/view-tutor/{tutor['tutor_id']}/packages"
            await self.call(http, kind, "GET", path, headers=headers)
        elif kind == "chat_send":
            if not convs:
                return await self.one(http, "create_request")
            body = {"conversation_id": random.choice(convs), "content": "soak " + uuid.uuid4().hex[:8]}
            body["client_message_id"] = uuid.uuid4().hex
            await self.call(http, kind, "POST", "/api/chat/messages", json=body, headers=headers)
        elif kind == "create_request":
            tutor = random.choice(self.tutors)
            body = {
                "tutor_id": tutor["tutor_id"],
                "package_id": random.choice(tutor["packages"]),
                "schedule_type": "recurring",
                "days": ["Monday", "Wednesday"],
                "start_time": "14:00",
                "end_time": "16:00",
                "message": "Soak request",
            }
            response = await self.call(
                http, kind, "POST", "/api/session-requests", json=body, headers=headers
            )
            if response is not None and response.status_code == 200:
                cid = response.json()["conversation_id"]
                if cid not in convs:
                    convs.append(cid)
        elif kind == "answer_request":
            tutor = random.choice(self.tutors)
            listing = await self.call(
                http,
                kind,
                "GET",
                "/api/session-requests/tutor?status=pending&limit=1",
                headers=tutor["headers"],
            )
            if listing is not None and listing.json():
                body = {"status": random.choice(["accepted", "rejected"])}
                path = f"/api/session-requests/tutor/{listing.json()[0]['id']}"
                await self.call(http, kind, "PATCH", path, json=body, headers=tutor["headers"])
        elif kind == "login":
            body = {"email": student["email"], "password": PASSWORD}
            await self.call(http, kind, "POST", "/api/login", json=body)

    async def socket(self, user: dict) -> None:
        token = user["headers"]["Authorization"].split()[1]
        url = self.base_url.replace("http://", "ws://") + f"/api/chat/ws?token={token}"
        while not self.stop.is_set():
            try:
                async with connect(url, open_timeout=30, ping_interval=None) as ws:
                    self.sockets_open += 1
                    try:
                        while not self.stop.is_set():
                            try:
                                frame = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                            except TimeoutError:
                                continue
                            if frame.get("type") not in ("ping", "pong", "ready"):
                                self.events += 1
                    finally:
                        self.sockets_open -= 1
            except (OSError, ConnectionClosed, TimeoutError) as exc:
                if self.stop.is_set():
                    return
                self.error("websocket", f"socket of user {user['user_id']} dropped: {exc!r}")
                await asyncio.sleep(1)

    async def traffic(self, rate: float, seconds: float, concurrency: int) -> None:
        kinds = list(itertools.chain.from_iterable([k] * w for k, w in MIX.items()))
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30, limits=limits) as http:
            pending: set[asyncio.Task] = set()
            started = time.monotonic()
            for n in itertools.count():
                due = started + n / rate  # open loop: a slow server does not slow the arrivals
                if due > started + seconds:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if len(pending) >= concurrency:
                    self.skipped += 1  # the server is saturated: --rate is beyond this machine
                    continue
                task = asyncio.create_task(self.one(http, random.choice(kinds)))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)


async def run(args: argparse.Namespace, server: LiveServer, students: list[dict], tutors: list[dict]) -> int:
    soak = Soak(server.url, students, tutors)
    pids = worker_pids(server)
    rss_start = await steady_rss(pids)
    users = (students + tutors) * (args.sockets // (len(students) + len(tutors)) + 1)
    sockets = [asyncio.create_task(soak.socket(user)) for user in users[: args.sockets]]
    deadline = time.monotonic() + 60
    while soak.sockets_open < args.sockets and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    print(f"{soak.sockets_open} WebSockets open on workers {pids}")
    seconds = args.minutes * 60
    tenth = seconds / 10  # the first is the warm-up
    started = time.monotonic()
    traffic = asyncio.create_task(soak.traffic(args.rate, seconds, args.concurrency))
    # One sample per tenth of the run: a plateau and a leak can end at the same figure.
    timeline = []
    for n in range(1, 11):
        await asyncio.sleep(max(0.0, started + n * tenth - time.monotonic()))
        timeline.append(await steady_rss(pids))
    await traffic
    rss_warm, rss_end = timeline[0], await steady_rss(pids)
    soak.stop.set()
    await asyncio.gather(*sockets, return_exceptions=True)

    total = sum(len(v) for v in soak.latency.values())
    print(
        f"\n{total} requests in {args.minutes:g} min ({total / seconds:.0f}/s), {soak.events} socket events"
    )
    print(f"{'kind':<20}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for kind in [*MIX, "websocket"]:
        values = sorted(soak.latency.get(kind, []))
        if not values and not soak.errors[kind]:
            continue
        p50 = values[len(values) // 2] * 1000 if values else float("nan")
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000 if values else float("nan")
        print(f"{kind:<20}{len(values):>8}{p50:>10.1f}{p99:>10.1f}{soak.errors[kind]:>8}")
    errors = sum(soak.errors.values())
    print(f"errors: {errors}")
    if soak.skipped:
        print(f"(not sent: {soak.skipped} arrivals with {args.concurrency} requests in flight; lower --rate)")
    for sample in soak.error_samples:
        print(f"  ✗ {sample}")
    grown = False
    print("worker RSS (MiB): start -> after warm-up -> end (growth after warm-up)")
    for pid in pids:
        growth = (rss_end[pid] - rss_warm[pid]) / rss_warm[pid]
        grown |= growth > MAX_GROWTH
        print(
            f"  pid {pid}: {rss_start[pid] / 1024:.1f} -> {rss_warm[pid] / 1024:.1f} -> "
            f"{rss_end[pid] / 1024:.1f} ({growth:+.1%})"
        )
        print("    each tenth: " + " ".join(f"{sample[pid] / 1024:.1f}" for sample in timeline))
    return 1 if errors or grown else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second, all kinds")
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight at most")
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--tutors", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    server_url = os.environ.get("BENCH_DATABASE_URL") or pg.server_url()
    name = pg.new_name("astegni_bench")
    url = pg.create_database(server_url, name)
    server = None
    try:
        students, tutors = seed(url, args.students, args.tutors)
        production = {"ARGON2_TIME_COST": "3", "ARGON2_MEMORY_KIB": "65536", "REQUEST_RATE_PER_MINUTE": "30"}
        server = LiveServer(url, WORKERS=str(args.workers), SECRET_KEY=SECRET, **production)
        print(f"server {server.url}, WORKERS={args.workers}, database {name}")
        return asyncio.run(run(args, server, students, tutors))
    finally:
        if server is not None:
            server.stop()
        pg.drop_database(server_url, name)


if __name__ == "__main__":
    sys.exit(main())
