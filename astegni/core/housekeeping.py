"""The expiry sweep: pending requests past expires_at become 'expired', with their history row,
card update, system message and events (session_request_expire_due in
astegni/session_requests/functions.sql); then the rows that have served their time go
(idempotency keys, rate-limit windows, refresh families, login counters, sent e-mails, stored
real-time events).

The sweep only makes the state explicit: every read already shows such a request as expired and
a new request for the same key expires it on the spot. Each server process sweeps; SKIP LOCKED
keeps them from colliding, and the purges are idempotent DELETEs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from astegni.accounts import login_throttle, refresh
from astegni.core import rate_limits
from astegni.core.database import Database
from astegni.notifications import outbox
from astegni.realtime import listener
from astegni.session_requests import service as session_requests

log = logging.getLogger("astegni.core.housekeeping")
BATCH = 500


def sweep(db: Database, batch: int = BATCH, login_window_seconds: int = 86400) -> int:
    """Expire everything due, one batch per transaction; returns how many (blocking)."""
    total = 0
    while True:
        with db.transaction() as cur:
            expired = session_requests.expire_batch(cur, batch)
        total += expired
        if expired < batch:
            break
    with db.transaction() as cur:
        session_requests.purge(cur)
        rate_limits.purge(cur)
        refresh.purge(cur)
        login_throttle.purge(cur, login_window_seconds)
        outbox.purge(cur)
        listener.purge(cur)
    return total


async def sweep_forever(app: Any) -> None:
    """The lifespan task: sweep every settings.expiry_sweep_seconds once the schema is ready."""
    interval = app.state.settings.expiry_sweep_seconds
    while True:
        await asyncio.sleep(interval)
        if not app.state.schema_ready:
            continue
        try:
            settings = app.state.settings
            expired = await asyncio.to_thread(sweep, app.state.db, BATCH, settings.login_window_seconds)
            if expired:
                log.info("expired %d pending session requests", expired)
        except Exception:  # the database may be briefly away; the next round tries again
            log.warning("expiry sweep failed", exc_info=True)
