"""Idempotency-Key: a retried POST gets the first answer back instead of acting twice.

The key is claimed (user, key) inside the transaction that does the work, so a concurrent retry
waits on the claim row until the first commits and then replays what it stored; a failure that
rolls the transaction back releases the key. Keys live 24 hours.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import psycopg2.errors
from fastapi.responses import JSONResponse

from astegni.core.errors import Conflict, Unauthorized, Unprocessable
from astegni.core.queries import Queries, execute, fetch_one

queries = Queries("session_requests/queries.sql")
HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


# The header in the create's OpenAPI operation (its handler reads it itself).
PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    "description": "A retry with the same key and body gets the first response back (24 hours); "
    "the same key with another body is a 422.",
}


def key_of(headers: Any) -> str | None:
    """The request's Idempotency-Key (None without one); 422 when it is not 1 to 255 characters."""
    key = headers.get(HEADER)
    if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise Unprocessable(
            [
                {
                    "type": "string_length",
                    "loc": ["header", HEADER],
                    "msg": f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters",
                }
            ]
        )
    return key


@dataclass(frozen=True)
class Answer:
    """An HTTP answer decided inside a transaction (what a replay returns)."""

    status: int
    body: dict[str, Any]
    replayed: bool = False

    def response(self) -> JSONResponse:
        headers = {"Idempotent-Replayed": "true"} if self.replayed else None
        return JSONResponse(self.body, status_code=self.status, headers=headers)


@dataclass(frozen=True)
class IdempotencyKey:
    user_id: int
    key: str
    request_hash: str

    @classmethod
    def of(cls, user_id: int, key: str, body: dict[str, Any]) -> IdempotencyKey:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return cls(user_id, key, hashlib.sha256(canonical.encode()).hexdigest())

    def _params(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "key": self.key, "request_hash": self.request_hash}

    def claim(self, cur: Any) -> Answer | None:
        """None when this request owns the key now; else the stored answer to replay."""
        try:
            if fetch_one(cur, queries.sr_claim_idempotency_key, self._params()):
                return None
        except psycopg2.errors.ForeignKeyViolation:  # the token's user was deleted
            raise Unauthorized("User not found or deactivated") from None
        stored = fetch_one(cur, queries.sr_stored_idempotency_key, self._params())
        if not stored["user_active"]:
            raise Unauthorized("User not found or deactivated")
        if stored["request_hash"] != self.request_hash:
            raise Unprocessable("Idempotency-Key was already used with a different request body")
        if stored["status_code"] is None:  # cannot be seen after the claimer's commit; defensive
            raise Conflict(
                "A request with this Idempotency-Key is still in progress", code="idempotency_in_progress"
            )
        return Answer(stored["status_code"], stored["response"], replayed=True)

    def store(self, cur: Any, answer: Answer) -> None:
        execute(
            cur,
            queries.sr_store_idempotency_response,
            self._params() | {"status_code": answer.status, "response": json.dumps(answer.body)},
        )
