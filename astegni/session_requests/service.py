"""Session requests: the create transaction, the lifecycle transitions and the lists.

`create` takes the database and chooses how the create runs (one statement, or a transaction
with its Idempotency-Key); every other function is the whole database work of one request,
`fn(cur, ...)` for `Database.run`. The writes are single calls of the PL/pgSQL functions in
astegni/session_requests/functions.sql (session_request_create, session_request_transition), so
the invariants hold in PostgreSQL under any concurrency.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from astegni.accounts.principal import caller_profile_id, load_principal
from astegni.core import events
from astegni.core.database import Database
from astegni.core.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized
from astegni.core.models import INT_MAX
from astegni.core.queries import Queries, Query, execute, fetch_all, fetch_one
from astegni.core.security import Claims
from astegni.core.settings import Settings
from astegni.i18n.ethiopian import format_date
from astegni.session_requests.idempotency import Answer, IdempotencyKey
from astegni.session_requests.messages import (
    ALREADY_ENROLLED,
    CREATED,
    DUPLICATE,
    DUPLICATE_OTHER,
    FIXED_ANSWERS,
    NOT_A_TUTOR,
    REQUEST_NOT_FOUND,
)
from astegni.session_requests.models import SessionRequestIn

queries = Queries("session_requests/queries.sql")


def long_date(moment: dt.datetime, timezone: str) -> str:
    """January 31, 2026: the date of moment where the request was made."""
    return format_date(moment.astimezone(ZoneInfo(timezone)), "en")


def duplicate_detail(
    request_id: int, created_at: dt.datetime, timezone: str, template: str = DUPLICATE
) -> str:
    return template.format(id=request_id, date=long_date(created_at, timezone))


# ---------------------------------------------------------------------------- create


def create_params(
    claims: Claims, params: dict[str, Any], rate_limit: int, expiry_seconds: float
) -> dict[str, Any]:
    """The parameters of queries.sr_create: the body's, the caller's and the settings'."""
    return params | {
        "user_id": claims.user_id,
        "role": claims.role,
        "rate_limit": rate_limit,
        "expiry_seconds": expiry_seconds,
    }


async def create(
    db: Database, settings: Settings, claims: Claims, body: SessionRequestIn, key: str | None
) -> Answer:
    """POST /api/session-requests: one call of session_request_create. Without an
    Idempotency-Key it is a statement that is its own transaction (Database.statement, no
    thread hop); with one, the claim of the key and the answer stored for replays share its
    transaction (create_idempotent)."""
    timezone = body.timezone or settings.default_timezone
    body.check_dates_not_past(timezone)
    params = create_params(
        claims,
        body.db_params(timezone),
        settings.request_rate_per_minute,
        settings.request_expiry_days * 86400,
    )
    if key is None:
        return _answer(await db.statement(queries.sr_create, params))
    idempotency = IdempotencyKey.of(claims.user_id, key, body.model_dump(mode="json"))
    return await db.run(create_idempotent, params, idempotency)


def create_idempotent(cur: Any, params: dict[str, Any], idempotency: IdempotencyKey) -> Answer:
    """POST /api/session-requests with an Idempotency-Key, for Database.run: the claim of the
    key, the same call, and the answer stored for replays, in one transaction. 401 and 429 raise,
    rolling back the claim, so that a retry is not answered from them."""
    replay = idempotency.claim(cur)
    if replay is not None:
        return replay
    row = fetch_one(cur, queries.sr_create, params)
    answer = _answer(row)
    events.queue(cur, row["events"])
    idempotency.store(cur, answer)
    return answer


def _answer(row: dict[str, Any]) -> Answer:
    """The response to a create, from session_request_create's row."""
    outcome = row["outcome"]
    if outcome == "created":
        return Answer(
            200,
            {
                "success": True,
                "message": CREATED,
                "request_id": row["request_id"],
                "conversation_id": row["conversation_id"],
                "message_id": row["message_id"],
                "created_at": row["created_at"].isoformat(),
            },
        )
    if outcome in ("duplicate", "duplicate_other"):
        template = DUPLICATE if outcome == "duplicate" else DUPLICATE_OTHER
        detail = duplicate_detail(row["request_id"], row["created_at"], row["timezone"], template)
        return Answer(
            409,
            {"detail": detail, "code": "duplicate_pending_request", "existing_request_id": row["request_id"]},
        )
    if outcome == "unauthorized":
        raise Unauthorized("User not found or deactivated")
    if outcome == "rate_limited":
        raise TooManyRequests("Too many session requests; please wait a minute", row["retry_after"])
    status, detail = FIXED_ANSWERS[outcome]
    return Answer(status, {"detail": detail, "code": outcome})


# ---------------------------------------------------------------------------- lists


def _page(
    cur: Any, query: Query, params: dict[str, Any], before: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """The page below `before` and the cursor of the next one (None on the last page). The first
    page is below INT_MAX, not below NULL, so that the query stays `id < $n` on its index for
    the prepared statement's generic plan too."""
    rows = fetch_all(cur, query, params | {"before": before or INT_MAX, "limit": limit + 1})
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1]["id"] if more else None


def my_requests_page(
    cur: Any, claims: Claims, status: str | None, tutor_id: int | None, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """The requests the caller sent and those sent for them as the learner (their student
    profile), newest first; a stranger's requests never match either side."""
    principal = load_principal(cur, claims)
    params = {
        "user_id": claims.user_id,
        "student_id": principal.profile_id("student"),
        "tutor_id": tutor_id,
        "status": status,
    }
    return _page(cur, queries.sr_my_requests, params, before, limit)


def _tutor_id(cur: Any, claims: Claims) -> int:
    return caller_profile_id(cur, claims, "tutor", NOT_A_TUTOR, "not_a_tutor")


def tutor_page(
    cur: Any, claims: Claims, status: str | None, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    params = {"tutor_id": _tutor_id(cur, claims), "status": status}
    return _page(cur, queries.sr_tutor_page, params, before, limit)


def tutor_request(cur: Any, claims: Claims, request_id: int) -> dict[str, Any]:
    row = fetch_one(cur, queries.sr_tutor_request, {"id": request_id, "tutor_id": _tutor_id(cur, claims)})
    if row is None:
        raise NotFound(REQUEST_NOT_FOUND, code="request_not_found")
    return dict(row) | {"history": fetch_all(cur, queries.sr_request_history, {"id": request_id})}


def my_students(
    cur: Any, claims: Claims, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    return _page(cur, queries.sr_my_students, {"tutor_id": _tutor_id(cur, claims)}, before, limit)


# ---------------------------------------------------------------------------- transitions


def not_pending(status: str) -> Conflict:
    """The request is the caller's but no longer pending: 409, with its current status."""
    if status == "expired":
        return Conflict("This session request has expired", status=status, code="request_expired")
    return Conflict(
        f"This session request is no longer pending (it is {status})",
        status=status,
        code="request_not_pending",
    )


def respond(cur: Any, claims: Claims, request_id: int, status: str, reason: str | None) -> dict[str, Any]:
    """The tutor accepts or rejects: exactly one of two racing answers gets a row."""
    tutor_id = _tutor_id(cur, claims)
    row = fetch_one(
        cur,
        queries.sr_transition,
        {
            "id": request_id,
            "to": status,
            "actor": claims.user_id,
            "reason": reason,
            "tutor_id": tutor_id,
            "requester_id": None,
        },
    )
    if row is None:
        state = fetch_one(cur, queries.sr_request_state, {"id": request_id})
        if state is None or state["tutor_id"] != tutor_id:
            raise NotFound(REQUEST_NOT_FOUND, code="request_not_found")
        raise not_pending(state["status"])
    events.queue(cur, row["events"])
    body = {
        "success": True,
        "message": f"Session request {row['status']}",
        "request_id": row["request_id"],
        "status": row["status"],
        "responded_at": row["responded_at"],
    }
    if row["agreed_price"] is not None:
        body["agreed_price"] = row["agreed_price"]
    if row["already_enrolled"]:
        # The first acceptance's enrolment stands: agreed_price is the price it keeps.
        body["already_enrolled"] = True
        body["message"] = ALREADY_ENROLLED
    return body


def cancel(cur: Any, claims: Claims, request_id: int, reason: str | None) -> dict[str, Any]:
    """The requester withdraws a pending request."""
    principal = load_principal(cur, claims)
    row = fetch_one(
        cur,
        queries.sr_transition,
        {
            "id": request_id,
            "to": "cancelled",
            "actor": claims.user_id,
            "reason": reason,
            "tutor_id": None,
            "requester_id": claims.user_id,
        },
    )
    if row is None:
        state = fetch_one(cur, queries.sr_request_state, {"id": request_id})
        if state is None:
            raise NotFound(REQUEST_NOT_FOUND, code="request_not_found")
        if state["requester_id"] != claims.user_id:
            # The tutor and the learner see the request, so they are told why; anyone else is
            # told nothing about it.
            if state["tutor_id"] == principal.profile_id("tutor") or (
                state["requested_to_id"] == principal.profile_id("student")
            ):
                raise Forbidden("Only the requester can cancel a session request", code="not_requester")
            raise NotFound(REQUEST_NOT_FOUND, code="request_not_found")
        raise not_pending(state["status"])
    events.queue(cur, row["events"])
    return {
        "success": True,
        "message": "Session request cancelled",
        "request_id": row["request_id"],
        "status": row["status"],
    }


# ---------------------------------------------------------------------------- expiry


def expire_batch(cur: Any, limit: int) -> int:
    row = fetch_one(cur, queries.sr_expire_due, {"limit": limit})
    events.queue(cur, row["events"])
    return row["expired"]


def purge(cur: Any) -> None:
    """Idempotency keys past their 24 hours (the create's rate-limit windows are in rate_limits,
    purged by astegni/core/rate_limits.py)."""
    execute(cur, queries.sr_purge_idempotency_keys)
