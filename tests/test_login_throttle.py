"""Login throttling holds under parallel guesses, per account and client address."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from astegni.accounts import service as accounts
from astegni.core import housekeeping as expiry
from tests.support.live import make_settings, wait_ready

EMAIL = "target@example.com"
PASSWORD = "the-right-password"


@contextlib.contextmanager
def app_clients(db_url: str, *addresses: str, **overrides) -> Iterator[list[TestClient]]:
    """One app; a client per address (the first runs the app's lifespan)."""
    from app import create_app

    app = create_app(make_settings(db_url, **overrides))
    first, *others = [TestClient(app, raise_server_exceptions=False, client=(a, 50000)) for a in addresses]
    with first:
        wait_ready(first)
        register = {
            "email": EMAIL,
            "password": PASSWORD,
            "first_name": "T",
            "father_name": "T",
            "roles": ["student"],
        }
        assert first.post("/api/register", json=register).status_code == 201
        yield [first, *others]


def login(client: TestClient, password: str, email: str = EMAIL):
    return client.post("/api/login", json={"email": email, "password": password})


@pytest.fixture
def hash_checks(monkeypatch) -> list[float]:
    """The start time of every password check login makes (the real check still runs)."""
    checks: list[float] = []
    lock = threading.Lock()
    real_verify, real_dummy = accounts.verify_password, accounts.dummy_verify

    def counted(real):
        def check(*args):
            with lock:
                checks.append(time.monotonic())
            return real(*args)

        return check

    monkeypatch.setattr(accounts, "verify_password", counted(real_verify))
    monkeypatch.setattr(accounts, "dummy_verify", counted(real_dummy))
    return checks


def test_parallel_guesses_reach_the_hash_at_most_the_limit(db_url, hash_checks):
    # A slow hash (~60 ms) so that the burst is still being checked when the owner arrives.
    with app_clients(
        db_url, "10.0.0.1", argon2_time_cost=4, argon2_memory_kib=8192, login_max_failures=5
    ) as (client,):
        start = threading.Barrier(15)

        def guess(n: int) -> int:
            start.wait()
            return login(client, f"wrong-guess-{n}").status_code

        with ThreadPoolExecutor(16) as pool:
            burst = [pool.submit(guess, n) for n in range(15)]
            deadline = time.monotonic() + 20
            while len(hash_checks) < 5 and time.monotonic() < deadline:
                time.sleep(0.005)
            during = pool.submit(login, client, PASSWORD).result()
            statuses = [f.result() for f in burst]
        assert len(hash_checks) <= 5
        assert statuses.count(401) <= 5 and set(statuses) <= {401, 429}
        assert during.status_code == 429, during.text
        assert 1 <= int(during.headers["retry-after"]) <= 300


def test_a_strangers_failures_lock_out_only_their_address(db_url, hash_checks):
    with app_clients(db_url, "10.0.0.1", "10.0.0.2", login_max_failures=3) as (stranger, owner):
        for _ in range(3):
            assert login(stranger, "wrong-guess").status_code == 401
        checked = len(hash_checks)
        refused = login(stranger, PASSWORD)
        assert refused.status_code == 429 and len(hash_checks) == checked  # the hash is not touched
        assert login(owner, PASSWORD).status_code == 200


def test_the_account_has_a_ceiling_across_addresses(db_url):
    addresses = [f"10.0.1.{n}" for n in range(1, 6)]
    with app_clients(db_url, *addresses, login_max_failures=3, login_account_max_failures=6) as clients:
        for client in clients[:2]:
            for _ in range(3):
                assert login(client, "wrong-guess").status_code == 401
        locked = login(clients[2], PASSWORD)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1


def test_a_successful_login_clears_its_address_count(db_url):
    with app_clients(db_url, "10.0.0.1", login_max_failures=3) as (client,):
        for _ in range(3):
            assert login(client, "wrong-guess").status_code == 401
            assert login(client, PASSWORD).status_code == 200  # counted as the 2nd attempt, then cleared
        for _ in range(10):  # an owner's own logins never add up to a lockout
            assert login(client, PASSWORD).status_code == 200


def test_unknown_emails_are_throttled_alike(db_url, hash_checks):
    with app_clients(db_url, "10.0.0.1", login_max_failures=2) as (client,):
        statuses = [login(client, "whatever-it-is", email="nobody@example.com").status_code for _ in range(4)]
        assert statuses == [401, 401, 429, 429] and len(hash_checks) == 2


def test_the_sweep_purges_old_login_counters(db_url, db):
    with app_clients(db_url, "10.0.0.1") as (client,):
        assert login(client, "wrong-guess").status_code == 401
        assert login(client, "wrong-guess", email="other@example.com").status_code == 401
    with db.transaction() as cur:
        cur.execute(
            "UPDATE login_attempts SET window_start = now() - interval '2 hours' WHERE email_key = %s",
            (EMAIL,),
        )
    expiry.sweep(db, login_window_seconds=3600)
    with db.transaction() as cur:
        cur.execute("SELECT DISTINCT email_key FROM login_attempts")
        assert [row["email_key"] for row in cur.fetchall()] == ["other@example.com"]


def test_strangers_cannot_lock_the_owner_out_of_an_address_they_logged_in_from(db_url):
    addresses = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.9"]
    with app_clients(db_url, *addresses, login_max_failures=3, login_account_max_failures=6) as clients:
        *strangers, owner = clients
        assert login(owner, PASSWORD).status_code == 200  # the owner's usual address, trusted
        for stranger in strangers:
            for _ in range(3):
                login(stranger, "wrong-guess")
        assert login(strangers[2], PASSWORD).status_code == 429  # the account-wide ceiling holds
        assert login(owner, PASSWORD).status_code == 200


def test_ipv6_clients_are_counted_by_their_64_prefix(db_url):
    with app_clients(db_url, "2001:db8:0:1::a", "2001:db8:0:1::b", login_max_failures=2) as (first, second):
        for _ in range(2):
            assert login(first, "wrong-guess").status_code == 401
        assert login(second, "wrong-guess").status_code == 429
