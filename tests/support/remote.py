"""Users and data on a real server (tests.support.live.LiveServer) through its HTTP API, and
calls raced against it."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg2

from tests.support.live import LiveServer

_n = itertools.count(1)


def race(calls: list[Callable[[httpx.Client], httpx.Response]]) -> list[httpx.Response]:
    """Run the calls in parallel threads, each on its own connection, released together."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
        with httpx.Client(timeout=30) as http:
            barrier.wait()
            return call(http)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def sql(db_url: str, query: str, *params) -> list[tuple]:
    """Rows of one statement (none for a statement that returns none) in a transaction of its own,
    committed, on a connection of its own (beside the servers' pools)."""
    conn = psycopg2.connect(db_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def register(server: LiveServer, role: str, *more_roles: str) -> dict:
    body = {
        "email": f"mp{next(_n)}-{os.urandom(3).hex()}@example.com",
        "password": "correct-horse-battery",
        "first_name": "Multi",
        "father_name": role,
        "roles": [role, *more_roles],
    }
    response = httpx.post(f"{server.url}/api/register", json=body, timeout=20)
    assert response.status_code == 201, response.text
    data = response.json()
    return {
        "id": data["user"]["id"],
        "role_ids": data["user"]["role_ids"],
        "token": data["access_token"],
        "headers": {"Authorization": f"Bearer {data['access_token']}"},
    }


def tutor_with_packages(server: LiveServer, count: int) -> tuple[dict, list[int]]:
    tutor = register(server, "tutor")
    packages = []
    for i in range(count):
        response = httpx.post(
            f"{server.url}/api/tutor/packages",
            json={"name": f"Package {i}", "hourly_rate": 300},
            headers=tutor["headers"],
            timeout=20,
        )
        assert response.status_code == 201, response.text
        packages.append(response.json()["id"])
    return tutor, packages
