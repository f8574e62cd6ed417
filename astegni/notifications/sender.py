"""The sender: a lifespan task in each server process that mails the outbox's due rows.

Each round: enqueue the chat digests now due, claim a batch (FOR UPDATE SKIP LOCKED, leased),
render each row, send the batch over one SMTP session (or write .eml files), and record each
outcome as soon as it is known: 'sent' right after the server accepts the message, so that the
window in which a crash would send it twice is one UPDATE long. A row whose lease runs out
(this process died) is claimed again by any process. Database work runs on worker threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from astegni.core.database import Database
from astegni.core.settings import Settings
from astegni.notifications import outbox
from astegni.notifications.render import build_message
from astegni.notifications.transport import PermanentFailure, transport_for

log = logging.getLogger("astegni.notifications")


async def send_forever(app: Any) -> None:
    """The lifespan task: a round every email_poll_seconds once the schema is ready."""
    settings: Settings = app.state.settings
    if not settings.smtp_url:
        log.info("SMTP_URL unset: emails are written under %s", settings.email_outbox_dir)
    next_digests = 0.0
    while True:
        await asyncio.sleep(settings.email_poll_seconds)
        if not app.state.schema_ready:
            continue
        try:
            # The digest scan reads every recently active conversation: not on every poll.
            digests = time.monotonic() >= next_digests
            if digests:
                next_digests = time.monotonic() + digest_scan_seconds(settings)
            while await send_round(app.state.db, settings, digests) == settings.email_batch_size:
                digests = False  # a full batch: more may be due
        except Exception:  # the database may be briefly away; the next round tries again
            log.warning("email round failed", exc_info=True)


def digest_scan_seconds(settings: Settings) -> float:
    """How often a process scans for due digests: often enough to keep the delay's promise to
    within a tenth, at most once a minute."""
    return min(60.0, settings.chat_digest_delay_seconds / 10)


async def send_round(db: Database, settings: Settings, digests: bool = True) -> int:
    """Digests (when asked), then one claimed batch sent; returns how many rows were claimed."""
    if digests:
        await db.run(outbox.enqueue_digests, settings)
    token, rows = await db.run(outbox.claim, settings)
    if rows:
        await _send_batch(db, settings, token, rows)
    return len(rows)


async def _send_batch(db: Database, settings: Settings, token: str, rows: list[dict[str, Any]]) -> None:
    # Past half the lease, the rest of the batch is given back rather than risk another process
    # claiming a row this one is still sending.
    deadline = time.monotonic() + settings.email_lease_seconds / 2
    wanted = []
    for row in rows:
        if row["wanted"]:
            wanted.append(row)
        else:
            await db.run(outbox.mark_sent, token, row["id"], True)
    if not wanted:
        return
    transport = transport_for(settings.smtp_url, settings.smtp_timeout_seconds, settings.email_outbox_dir)
    pending = list(wanted)
    try:
        async with transport:
            while pending and time.monotonic() < deadline:
                row = pending[0]
                try:
                    message = build_message(row, settings)
                except Exception as exc:  # a bug or bad data in this row: others still go
                    log.exception("rendering email %d failed", row["id"])
                    await _failed(db, settings, token, row, f"render: {exc!r}", permanent=True)
                    pending.pop(0)
                    continue
                try:
                    await transport.send(message)
                except PermanentFailure as exc:
                    await _failed(db, settings, token, row, str(exc), permanent=True)
                else:
                    await db.run(outbox.mark_sent, token, row["id"])
                pending.pop(0)
    except asyncio.CancelledError:
        await asyncio.shield(db.run(outbox.release, token, [r["id"] for r in pending]))
        raise
    except Exception as exc:  # the server is away or broke the session: the rest is retried
        log.warning("sending email failed: %s", exc)
        for row in pending:
            await _failed(db, settings, token, row, f"{type(exc).__name__}: {exc}", permanent=False)
        return
    await db.run(outbox.release, token, [r["id"] for r in pending])


async def _failed(
    db: Database, settings: Settings, token: str, row: dict[str, Any], error: str, permanent: bool
) -> None:
    if permanent or row["attempts"] >= settings.email_max_attempts:
        log.error("email %d (%s to user %d) is dead: %s", row["id"], row["kind"], row["user_id"], error)
    await db.run(outbox.mark_failed, settings, token, row["id"], error, permanent)
