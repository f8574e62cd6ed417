"""The chat benchmark's servers and its latency measures: percentiles, the conversation list
over HTTP and the same query alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg2

from astegni.core.queries import Queries
from tests.support.live import wait_http_ready

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent
SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50) * 1000:.2f} ms, p99 {percentile(values, 99) * 1000:.2f} ms"


class Server:
    def __init__(self, url: str, port: int, logdir: Path) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        env = os.environ | {
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET,
            "PORT": str(port),
            "WORKERS": "1",
            "LOG_LEVEL": "warning",
        }
        self.log = logdir / f"server-{port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "app.py"], cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_http_ready(self.base, self.process, self.log)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def list_latency(targets: list[tuple[Server, str]], runs: int, batch: int = 25) -> list[list[float]]:
    """GET /api/chat/conversations?limit=20, sequentially, alternating between the targets in
    batches, so that a noisy neighbour slows every target alike. Timings per target."""
    clients = [
        httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        for server, token in targets
    ]
    timings: list[list[float]] = [[] for _ in targets]
    try:
        for http in clients:  # warm-up; and the page must be a full one
            for _ in range(30):
                response = http.get("/api/chat/conversations?limit=20")
                assert response.status_code == 200, response.text
            page = response.json()["conversations"]
            assert len(page) == 20 and all(c["last_message"] for c in page)
        while len(timings[0]) < runs:
            for http, series in zip(clients, timings, strict=True):
                for _ in range(batch):
                    started = time.perf_counter()
                    http.get("/api/chat/conversations?limit=20")
                    series.append(time.perf_counter() - started)
    finally:
        for http in clients:
            http.close()
    return timings


def query_latency(urls: list[str], user_id: int, runs: int, batch: int = 25) -> list[list[float]]:
    """The list query alone, as the server runs it (a prepared statement, EXECUTEd), alternating
    between the databases like list_latency."""
    query = Queries("chat/queries.sql").conversation_page
    params = {"user_id": user_id, "only_id": None, "before_at": None, "before_id": None, "limit": 21}
    conns = [psycopg2.connect(url) for url in urls]
    timings: list[list[float]] = [[] for _ in urls]
    try:
        for conn in conns:
            with conn.cursor() as cur:
                cur.execute(query.prepare_sql)
                for _ in range(20):
                    cur.execute(query.execute_sql, params)
        while len(timings[0]) < runs:
            for conn, series in zip(conns, timings, strict=True):
                with conn.cursor() as cur:
                    for _ in range(batch):
                        started = time.perf_counter()
                        cur.execute(query.execute_sql, params)
                        cur.fetchall()
                        series.append(time.perf_counter() - started)
    finally:
        for conn in conns:
            conn.close()
    return timings
