"""Forged, broken and misused tokens: always 401 with WWW-Authenticate, never a 500."""

from __future__ import annotations

import base64
import json
import time

import pytest
from jose import jwt
from pydantic import ValidationError

from astegni.core.settings import Settings
from tests.support.live import TEST_SECRET


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(user_id: int, **overrides) -> dict:
    now = int(time.time())
    claims = {"sub": str(user_id), "role": "student", "type": "access", "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(alg: str, claims: dict) -> str:
    return f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}."


FORGERIES = {
    "alg none": lambda uid: _unsigned("none", _claims(uid)),
    "alg noNE": lambda uid: _unsigned("noNE", _claims(uid)),
    "alg NONE with a signature": lambda uid: _unsigned("NONE", _claims(uid)) + _b64(b"sig"),
    "HS512 with the right key": lambda uid: jwt.encode(_claims(uid), TEST_SECRET, algorithm="HS512"),
    "HS384 with the right key": lambda uid: jwt.encode(_claims(uid), TEST_SECRET, algorithm="HS384"),
    "wrong key": lambda uid: jwt.encode(
        _claims(uid), "another-secret-key-of-enough-length-0123", algorithm="HS256"
    ),
    "expired": lambda uid: jwt.encode(
        _claims(uid, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600), TEST_SECRET, algorithm="HS256"
    ),
    "no exp": lambda uid: jwt.encode(_claims(uid, exp=None), TEST_SECRET, algorithm="HS256"),
    "no sub": lambda uid: jwt.encode(_claims(uid, sub=None), TEST_SECRET, algorithm="HS256"),
    "no iat": lambda uid: jwt.encode(_claims(uid, iat=None), TEST_SECRET, algorithm="HS256"),
    "sub not a number": lambda uid: jwt.encode(_claims(uid, sub="admin"), TEST_SECRET, algorithm="HS256"),
    "sub zero": lambda uid: jwt.encode(_claims(uid, sub="0"), TEST_SECRET, algorithm="HS256"),
    "sub an integer": lambda uid: jwt.encode({**_claims(uid), "sub": uid}, TEST_SECRET, algorithm="HS256"),
    "sub too large": lambda uid: jwt.encode(_claims(uid, sub="9" * 30), TEST_SECRET, algorithm="HS256"),
    "role not a string": lambda uid: jwt.encode(_claims(uid, role=["tutor"]), TEST_SECRET, algorithm="HS256"),
    "refresh type": lambda uid: jwt.encode(_claims(uid, type="refresh"), TEST_SECRET, algorithm="HS256"),
    "truncated signature": lambda uid: jwt.encode(_claims(uid), TEST_SECRET, algorithm="HS256")[:-6],
    "signature of another body": lambda uid: ".".join(
        [
            *jwt.encode(_claims(uid, role="tutor"), TEST_SECRET, algorithm="HS256").split(".")[:2],
            jwt.encode(_claims(uid), TEST_SECRET, algorithm="HS256").split(".")[2],
        ]
    ),
    "garbage": lambda uid: "garbage",
    "three dots of garbage": lambda uid: "a.b.c",
    "non-JSON header": lambda uid: f"{_b64(b'not json')}.{_b64(_claims(uid))}.sig",
    "non-ASCII": lambda uid: "ey\u00e9.\u00ff.x",
}


def test_forged_tokens_are_401(client, factory):
    # One app for all forgeries (a parametrized test would build a database for each).
    user = factory.student()
    assert client.get("/api/me", headers=user.headers).status_code == 200
    for name, forge in FORGERIES.items():
        token = forge(user.id)
        for path in ("/api/me", "/api/student/profile", "/api/tutor/packages"):
            response = client.get(path, headers={"Authorization": f"Bearer {token}".encode("latin-1")})
            assert response.status_code == 401, (name, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer", name
            assert isinstance(response.json()["detail"], str), name


def test_missing_or_malformed_authorization_is_401(client):
    for header in (None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer"):
        headers = {} if header is None else {"Authorization": header}
        response = client.get("/api/me", headers=headers)
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"] == "Bearer", header


def test_a_valid_token_works_and_lowercase_bearer_is_accepted(client, factory):
    user = factory.student()
    assert client.get("/api/me", headers={"Authorization": f"bearer {user.token}"}).status_code == 200


def test_a_token_claiming_a_role_the_user_lacks_grants_nothing(client, factory, db):
    student = factory.student()
    forged = jwt.encode(_claims(student.id, role="tutor"), TEST_SECRET, algorithm="HS256")
    headers = {"Authorization": f"Bearer {forged}"}
    package = {"name": "Free money", "hourly_rate": 100}
    assert client.post("/api/tutor/packages", json=package, headers=headers).status_code == 401
    assert client.get("/api/tutor/packages", headers=headers).status_code == 401
    assert client.get("/api/me", headers=headers).status_code == 401
    assert client.post("/api/switch-role", json={"role": "tutor"}, headers=headers).status_code == 401
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM tutor_profiles")
        assert cur.fetchone()["n"] == 0
        cur.execute("SELECT count(*) AS n FROM tutor_packages")
        assert cur.fetchone()["n"] == 0


def test_a_token_for_another_users_id_is_only_as_good_as_its_signature(client, factory):
    # A correctly signed token is the only way to act as a user: sub decides who you are.
    first, second = factory.student(), factory.student()
    token = jwt.encode(_claims(second.id), TEST_SECRET, algorithm="HS256")
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["id"] == second.id != first.id


def test_a_user_id_query_parameter_naming_someone_else_is_403(client, factory):
    user, other = factory.student(), factory.student()
    assert client.get(f"/api/me?user_id={user.id}", headers=user.headers).status_code == 200
    response = client.get(f"/api/me?user_id={other.id}", headers=user.headers)
    assert response.status_code == 403


def test_a_real_database_url_needs_a_strong_secret_key():
    for secret in (None, "", "too-short"):
        with pytest.raises(ValidationError, match="SECRET_KEY"):
            Settings(database_url="postgresql://db.example/astegni", secret_key=secret)
    assert Settings(database_url="postgresql://db.example/astegni", secret_key=TEST_SECRET).secret_key


def test_a_token_verified_once_is_refused_after_it_expires(client, factory, monkeypatch):
    # Verified tokens are cached per process; the cache must not outlive the token's exp.
    user = factory.student()
    assert client.get("/api/me", headers=user.headers).status_code == 200
    later = time.time() + 31 * 60
    monkeypatch.setattr("astegni.core.security.time.time", lambda: later)
    response = client.get("/api/me", headers=user.headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
