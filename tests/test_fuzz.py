"""Schemathesis against the running server's /openapi.json: every operation, positive and
negative data, with the token of a student, a parent and a tutor in turn; time fields and cursors
get out-of-range values (offsets, forged cursors) half the time.

Passes when no response is a 5xx and every response matches what its operation declares (status
code, content type, body schema, headers). `make test` runs a bounded pass (FUZZ_EXAMPLES per
operation and phase, default 5); `make fuzz` runs a long one (FUZZ_EXAMPLES=100).

The server is a real `python app.py` on a database of its own, seeded through the API with one
of everything (tutor with packages, parent with a child, a request, a conversation, a message),
so that path ids hit real rows part of the time rather than always answering 404.
"""

from __future__ import annotations

import base64
import os
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from tests import pg
from tests.support.live import LiveServer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
ROLES = ("student", "parent", "tutor")
PASSWORD = "correct-horse-battery"
# Responses that negative (invalid) data may get; anything 2xx for invalid input is a bug.
REJECTIONS = [400, 401, 403, 404, 405, 409, 413, 422, 429]

CONFIG = schemathesis.Config.from_dict(
    {
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": False},
        "checks": {
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            "negative_data_rejection": {"enabled": True, "expected-statuses": REJECTIONS},
            "ignored_auth": {"enabled": True},
            "unsupported_method": {"enabled": True},
            # Random ids are rightly 404 and the data set is shared, so "valid data must get a
            # 2xx" and the use-after-free heuristics would report the design, not bugs.
            "positive_data_acceptance": {"enabled": False},
            "use_after_free": {"enabled": False},
            "ensure_resource_availability": {"enabled": False},
            "missing_required_header": {"enabled": False},
        },
        # The contract's paths overlap: GET /api/chat/messages/{conversation_id} and
        # PUT/DELETE /api/chat/messages/{message_id} are one URL template, and
        # /api/session-requests/tutor/my-students also fits /tutor/{request_id}; a method
        # "unsupported" on one of them is the other's, not a missing 405.
        "operations": [
            {
                "include-path-regex": "^/api/(chat/messages/\\{|session-requests/tutor/)",
                "checks": {"unsupported_method": {"enabled": False}},
            }
        ],
    }
)


def _register(http: httpx.Client, role: str) -> dict[str, Any]:
    email = f"fuzz-{role}-{os.urandom(4).hex()}@example.com"
    body = {"email": email, "password": PASSWORD, "first_name": "Fuzz", "father_name": role, "roles": [role]}
    response = http.post("/api/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _seed(http: httpx.Client) -> tuple[dict[str, str], dict[str, list[int]]]:
    """A token per role and the ids of real rows they can reach."""
    users = {role: _register(http, role) for role in ROLES}
    auth = {role: {"Authorization": f"Bearer {user['access_token']}"} for role, user in users.items()}
    packages = [
        http.post(
            "/api/tutor/packages",
            json={"name": f"Fuzz {i}", "hourly_rate": 200 + i, "schedule_days": ["Monday"]},
            headers=auth["tutor"],
        ).json()["id"]
        for i in range(2)
    ]
    child = http.post(
        "/api/parent/children",
        json={
            "email": f"fuzz-child-{os.urandom(4).hex()}@example.com",
            "password": PASSWORD,
            "first_name": "Child",
            "father_name": "Fuzz",
        },
        headers=auth["parent"],
    ).json()
    tutor_id = users["tutor"]["user"]["role_ids"]["tutor"]
    base = {"tutor_id": tutor_id, "schedule_type": "recurring", "days": ["Monday"]}
    base |= {"start_time": "14:00", "end_time": "15:00"}
    made = [
        http.post("/api/session-requests", json=base | {"package_id": packages[0]}, headers=auth["student"]),
        http.post(
            "/api/session-requests",
            json=base | {"package_id": packages[1], "requested_to_id": child["id"]},
            headers=auth["parent"],
        ),
    ]
    assert all(r.status_code == 200 for r in made), [r.text for r in made]
    created = [r.json() for r in made]
    sent = http.post(
        "/api/chat/messages",
        json={"conversation_id": created[0]["conversation_id"], "content": "hello", "message_type": "text"},
        headers=auth["student"],
    )
    assert sent.status_code == 201, sent.text
    ids = {
        "tutor_id": [tutor_id],
        "package_id": packages,
        "request_id": [c["request_id"] for c in created],
        "conversation_id": [c["conversation_id"] for c in created],
        "message_id": [sent.json()["message"]["id"], *(c["message_id"] for c in created)],
    }
    return {role: headers["Authorization"] for role, headers in auth.items()}, ids


@pytest.fixture(scope="module")
def fuzz_server(pg_url: str, template_db: str) -> Iterator[tuple[LiveServer, dict[str, str], dict]]:
    with pg.scratch_database(pg_url, template_db) as db_url:
        server = LiveServer(db_url, WORKERS="1", DB_POOL_SIZE="8")
        try:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                tokens, ids = _seed(http)
            yield server, tokens, ids
            cases = f"{sum(CALLS.values())} cases over {len(CALLS)} operations"
            print(f"\nfuzz: {cases} (FUZZ_EXAMPLES={EXAMPLES})")
        finally:
            server.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    server, _, _ = fuzz_server
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=CONFIG)


@pytest.fixture(scope="module")
def http_session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


schema = schemathesis.pytest.from_fixture("api_schema")
CALLS: dict[str, int] = {}  # cases sent per operation, reported at the end of the module


# Well-formed values that are out of range, which generated data rarely hits: a time of day with
# a UTC offset, and cursors no server could have produced (past PostgreSQL's integer and bigint,
# a numeral in other digits, timestamps at the calendar's ends).
OFFSET_TIMES = ("10:00+03:00", "23:59:59-12:00", "00:00Z", "12:00:00.5+14:00")
ID_CURSORS = ("2147483648", "9223372036854775807", "9223372036854775808", "-1", "0", "1.5", "1e3", "\uff11")
TIME_CURSORS = tuple(
    base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    for raw in (
        "0001-01-01T00:00:00+14:00|1",
        "9999-12-31T23:59:59-14:00|1",
        "2026-01-01T00:00:00+00:00|2147483648",
        "2026-01-01T00:00:00|1",
        "2026-01-01|1|2",
        "nan|1",
    )
)


def _forge(case: Any) -> None:
    """Half the time, put out-of-range values where the operation has time fields or cursors."""
    if isinstance(case.body, dict) and _pick(case, "times", (True, False)):
        for name in [k for k in case.body if k.endswith("_time")]:
            case.body[name] = _pick(case, name, OFFSET_TIMES)
    cursors = [p.name for p in case.operation.query if p.name in ("before", "before_id", "after_id")]
    if cursors and _pick(case, "cursors", (True, False)):
        forged = TIME_CURSORS if case.operation.path == "/api/chat/conversations" else ID_CURSORS
        case.query = {**(case.query or {}), **{name: _pick(case, name, forged) for name in cursors}}


def _pick(case: Any, salt: str, options: list | tuple) -> Any:
    """A choice that depends only on the case's data, so that Hypothesis replaying a failing
    case (shrinking) makes the same choice again."""
    key = repr((salt, case.path_parameters, case.query, case.body)).encode()
    return options[zlib.crc32(key) % len(options)]


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.slow
def test_api_conforms_to_its_schema(case, fuzz_server, http_session):
    server, tokens, ids = fuzz_server
    # The role is drawn from the case's data, so a replayed (shrunk) case asks as the same role;
    # over an operation's cases every role asks.
    role = _pick(case, "role", ROLES)
    # Half the time, point path ids at rows that exist (some the caller may reach, some not).
    for name, value in dict(case.path_parameters or {}).items():
        # Leave invalid ids invalid (booleans, and ints outside the declared 1..2^31-1: replacing
        # one of a negative case with a real id would make the case valid, and its 200 a "bug").
        valid = type(value) is int and 1 <= value <= 2_147_483_647
        if name in ids and valid and _pick(case, name, (True, False)):
            case.path_parameters[name] = _pick(case, name + "-id", ids[name])
    _forge(case)
    CALLS[case.operation.label] = CALLS.get(case.operation.label, 0) + 1
    try:
        case.call_and_validate(session=http_session, headers={"Authorization": tokens[role]}, timeout=30)
    except Exception:
        print(f"as {role}; server log tail:\n{server.log_path.read_text()[-4000:]}")
        raise


def test_a_405_names_the_allowed_methods(client):
    """Found by the fuzzer: the static pages at "/" answered API paths asked with a method no
    route has, 404 for GET and 405 without `Allow` otherwise."""
    for method, path, allowed in [
        ("GET", "/api/register", "POST"),
        ("TRACE", "/healthz", "GET"),
        ("DELETE", "/api/login", "POST"),
        ("PATCH", "/api/chat/messages/1", "DELETE, GET, PUT"),
        ("POST", "/login.html", "GET, HEAD"),
    ]:
        response = client.request(method, path)
        assert (response.status_code, response.headers.get("allow")) == (405, allowed), (method, path)
        assert response.json() == {"detail": "Method Not Allowed", "code": "method_not_allowed"}
    assert client.get("/api/no-such-endpoint").status_code == 404
    assert client.get("/login.html").status_code == 200


def test_a_422_may_carry_one_sentence_and_the_schema_says_so(client):
    """Found by the fuzzer: a NUL in the query string (and an invalid cursor, a reused
    Idempotency-Key) is a 422 whose detail is a sentence, which the declared schema refused."""
    response = client.get("/api/chat/conversations?before=%00")
    assert response.status_code == 422 and isinstance(response.json()["detail"], str)
    detail = client.get("/openapi.json").json()["components"]["schemas"]["HTTPValidationError"]
    assert {"type": "string"} in detail["properties"]["detail"]["anyOf"]
