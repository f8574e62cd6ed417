"""The shared rate limiter: a fixed window per (bucket, subject), counted in one statement."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from astegni.core import rate_limits
from astegni.core.errors import TooManyRequests


def test_hits_past_the_limit_get_429_with_the_time_left(db) -> None:
    for _ in range(3):
        with db.transaction() as cur:
            rate_limits.hit(cur, "test", 7, limit=3, window_seconds=60)
    with pytest.raises(TooManyRequests) as raised, db.transaction() as cur:
        rate_limits.hit(cur, "test", 7, limit=3, window_seconds=60)
    assert 1 <= int(raised.value.headers["Retry-After"]) <= 60


def test_subjects_and_buckets_are_counted_apart(db) -> None:
    with db.transaction() as cur:
        rate_limits.hit(cur, "test", 1, limit=1)
        rate_limits.hit(cur, "test", 2, limit=1)
        rate_limits.hit(cur, "other", 1, limit=1)


def test_a_limit_of_zero_counts_nothing(db) -> None:
    with db.transaction() as cur:
        for _ in range(5):
            rate_limits.hit(cur, "test", 1, limit=0)
        cur.execute("SELECT count(*) AS n FROM rate_limits")
        assert cur.fetchone()["n"] == 0


def test_a_new_window_starts_over(db) -> None:
    with db.transaction() as cur:
        rate_limits.hit(cur, "test", 1, limit=1)
        cur.execute("UPDATE rate_limits SET window_start = now() - interval '2 minutes'")
        rate_limits.hit(cur, "test", 1, limit=1, window_seconds=60)


def test_parallel_hits_never_pass_the_limit(db) -> None:
    def one(_: int) -> bool:
        try:
            with db.transaction() as cur:
                rate_limits.hit(cur, "burst", 1, limit=5)
            return True
        except TooManyRequests:
            return False

    with ThreadPoolExecutor(4) as pool:
        allowed = sum(pool.map(one, range(20)))
    assert allowed == 5


def test_the_purge_drops_ended_windows_only(db) -> None:
    with db.transaction() as cur:
        rate_limits.hit(cur, "old", 1, limit=5)
        rate_limits.hit(cur, "new", 1, limit=5)
        cur.execute("UPDATE rate_limits SET window_start = now() - interval '2 days' WHERE bucket = 'old'")
        rate_limits.purge(cur)
        cur.execute("SELECT bucket FROM rate_limits")
        assert [row["bucket"] for row in cur.fetchall()] == ["new"]
