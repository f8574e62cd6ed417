"""Rate limits of writes: a fixed-window counter per action and actor, kept in PostgreSQL so
that it holds across server processes.

A hit is counted before the action runs, in one statement (rate_limit_hit,
astegni/core/functions.sql), so a burst sent at once cannot slip under the limit; past it
the caller gets 429 with Retry-After. A hit counts once its transaction commits: to count
attempts that fail (and roll back), call hit() in a transaction of its own before the action.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from starlette.requests import HTTPConnection

from astegni.core.errors import TooManyRequests
from astegni.core.queries import Queries, execute, fetch_one

queries = Queries("core/rate_limits.sql")


def hit(cur: Any, bucket: str, subject: object, limit: int, window_seconds: int = 60) -> None:
    """Count one `bucket` action by `subject`; 429 past `limit` per window. limit 0: no limit."""
    if limit <= 0:
        return
    row = fetch_one(
        cur,
        queries.rl_hit,
        {"bucket": bucket, "subject": str(subject), "limit": limit, "window_seconds": window_seconds},
    )
    retry_after = row["retry_after"] if isinstance(row, dict) else row[0]
    if retry_after:
        raise TooManyRequests("Too many requests, try again later", retry_after=retry_after)


def client_key(conn: HTTPConnection) -> str:
    """The client address that per-address limits count: an IPv6 client by its /64, since one
    subscriber holds a whole /64 and could otherwise take a fresh address for every attempt."""
    host = conn.client.host if conn.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def purge(cur: Any) -> None:
    """Drop windows that have ended (the expiry sweep calls this)."""
    execute(cur, queries.rl_purge)
