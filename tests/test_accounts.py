"""Accounts: register, login (JSON and form), refresh, me, my-roles, switch-role, throttling."""

from __future__ import annotations

import pytest

from astegni.core.security import decode_token
from tests.support.factories import PASSWORD
from tests.support.live import TEST_SECRET, app_client

LOGIN_KEYS = {"access_token", "refresh_token", "token_type", "user"}
USER_KEYS = {"id", "email", "first_name", "father_name", "roles", "active_role", "role_ids", "locale"}


def register(client, **fields):
    body = {
        "email": "abebe.kebede@example.com",
        "password": "a-long-password",
        "first_name": "Abebe",
        "father_name": "Kebede",
        "roles": ["student"],
    } | fields
    return client.post("/api/register", json=body)


def login(client, email, password):
    return client.post("/api/login", json={"email": email, "password": password})


# ------------------------------------------------------------------ register


def test_register_returns_the_login_body_and_creates_a_profile_per_role(client, db):
    response = register(
        client, roles=["parent", "student"], grandfather_name="Mulugeta", phone="+251911000000"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == LOGIN_KEYS
    assert body["token_type"] == "bearer"
    user = body["user"]
    assert set(user) == USER_KEYS
    assert user["roles"] == ["parent", "student"]
    assert user["active_role"] == "parent"  # the first role listed
    with db.transaction() as cur:
        cur.execute("SELECT id FROM parent_profiles WHERE user_id = %s", (user["id"],))
        parent = cur.fetchone()
        cur.execute("SELECT id FROM student_profiles WHERE user_id = %s", (user["id"],))
        student = cur.fetchone()
        cur.execute("SELECT count(*) AS n FROM tutor_profiles WHERE user_id = %s", (user["id"],))
        tutors = cur.fetchone()["n"]
    assert user["role_ids"] == {"parent": parent["id"], "student": student["id"]}
    assert tutors == 0
    me = client.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == user


def test_email_is_unique_whatever_its_case(client):
    assert register(client, email="Selam.Bekele@Example.com").status_code == 201
    response = register(client, email="selam.bekele@example.COM")
    assert response.status_code == 409
    assert response.json() == {"detail": "Email already registered", "code": "email_taken"}


@pytest.mark.parametrize(
    "fields",
    [
        {"roles": []},
        {"roles": ["admin"]},
        {"email": "not-an-email"},
        {"password": "short"},
        {"first_name": ""},
        {"first_name": "x" * 101},
        {"roles": None},
    ],
)
def test_register_refuses_invalid_bodies(client, fields):
    response = register(client, **fields)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_register_ignores_fields_a_client_must_not_set(client):
    response = register(client, is_active=False, active_role="tutor", id=999)
    assert response.status_code == 201
    user = response.json()["user"]
    assert user["active_role"] == "student" and user["id"] != 999
    me = client.get("/api/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert me.status_code == 200


# ------------------------------------------------------------------ login


def test_login_with_json(client, factory):
    user = factory.student()
    response = login(client, user.email.upper(), PASSWORD)  # emails match whatever their case
    assert response.status_code == 200
    body = response.json()
    assert set(body) == LOGIN_KEYS and body["token_type"] == "bearer"
    assert body["user"]["id"] == user.id and set(body["user"]) == USER_KEYS


def test_login_with_the_oauth2_form(client, factory):
    user = factory.tutor(packages=0)
    response = client.post("/api/login", data={"username": user.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.json()["user"]["role_ids"] == {"tutor": user.role_ids["tutor"]}
    me = client.get("/api/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert me.json()["id"] == user.id


def test_wrong_password_and_unknown_email_get_the_same_401(client, factory):
    user = factory.student()
    wrong_password = login(client, user.email, "not-the-password")
    unknown_email = login(client, "nobody@example.com", PASSWORD)
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert (
        wrong_password.json()
        == unknown_email.json()
        == {"detail": "Incorrect email or password", "code": "bad_credentials"}
    )
    assert wrong_password.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"email": "a@example.com"}},
        {"json": {"password": "x"}},
        {"json": ["a@example.com", "x"]},
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        {"data": {"username": "a@example.com"}},
    ],
)
def test_login_refuses_malformed_bodies(client, kwargs):
    response = client.post("/api/login", **kwargs)
    assert response.status_code == 422
    assert "detail" in response.json()


# ------------------------------------------------------------------ refresh, me, my-roles


def test_refresh_issues_new_tokens(client, factory):
    user = factory.parent(children=0)
    response = client.post("/api/refresh", json={"refresh_token": user.refresh_token})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == LOGIN_KEYS and body["user"]["id"] == user.id
    me = client.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["active_role"] == "parent"


def test_refresh_with_an_access_token_is_401(client, factory):
    user = factory.student()
    response = client.post("/api/refresh", json={"refresh_token": user.token})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_refresh_token_is_not_an_access_token(client, factory):
    user = factory.student()
    response = client.get("/api/me", headers={"Authorization": f"Bearer {user.refresh_token}"})
    assert response.status_code == 401


def test_me_and_my_roles(client, factory):
    user = factory.user(["student", "parent"])
    me = client.get("/api/me", headers=user.headers)
    assert me.status_code == 200
    assert me.json()["roles"] == ["student", "parent"] and me.json()["active_role"] == "student"
    roles = client.get("/api/my-roles", headers=user.headers)
    assert roles.json() == {"user_roles": ["student", "parent"], "active_role": "student"}


# ------------------------------------------------------------------ switch-role


def test_switch_role_issues_tokens_for_the_new_role_and_remembers_it(client, factory, settings):
    user = factory.user(["student", "parent"])
    response = client.post("/api/switch-role", json={"role": "parent"}, headers=user.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["active_role"] == "parent" and body["user_roles"] == ["student", "parent"]
    assert body["token_type"] == "bearer"
    assert decode_token(settings, body["access_token"]).role == "parent"
    new_headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/my-roles", headers=new_headers).json()["active_role"] == "parent"
    # The next login starts in the role last chosen.
    assert login(client, user.email, PASSWORD).json()["user"]["active_role"] == "parent"


def test_switch_to_a_role_not_held_is_403(client, factory, db):
    user = factory.student()
    response = client.post("/api/switch-role", json={"role": "tutor"}, headers=user.headers)
    assert response.status_code == 403
    assert client.get("/api/my-roles", headers=user.headers).json()["active_role"] == "student"
    with db.transaction() as cur:
        cur.execute("SELECT count(*) AS n FROM tutor_profiles")
        assert cur.fetchone()["n"] == 0


def test_switch_to_an_unknown_role_is_422(client, factory):
    user = factory.student()
    response = client.post("/api/switch-role", json={"role": "admin"}, headers=user.headers)
    assert response.status_code == 422


# ------------------------------------------------------------------ deactivated and deleted users


def test_a_deactivated_user_is_refused_at_once(client, factory, db):
    user = factory.user(["student", "parent"])
    assert client.get("/api/me", headers=user.headers).status_code == 200
    with db.transaction() as cur:
        cur.execute("UPDATE users SET is_active = false WHERE id = %s", (user.id,))
    for response in (
        client.get("/api/me", headers=user.headers),
        client.get("/api/my-roles", headers=user.headers),
        client.post("/api/switch-role", json={"role": "parent"}, headers=user.headers),
        client.post("/api/refresh", json={"refresh_token": user.refresh_token}),
        client.get("/api/student/profile", headers=user.headers),
    ):
        assert response.status_code == 401, response.request.url
        assert response.headers["www-authenticate"] == "Bearer"
    refused = login(client, user.email, PASSWORD)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Incorrect email or password", "code": "bad_credentials"}


def test_a_deleted_user_is_refused(client, factory, db):
    user = factory.student()
    with db.transaction() as cur:
        cur.execute("DELETE FROM users WHERE id = %s", (user.id,))
    assert client.get("/api/me", headers=user.headers).status_code == 401
    assert client.post("/api/refresh", json={"refresh_token": user.refresh_token}).status_code == 401


# ------------------------------------------------------------------ throttling


def test_repeated_failures_lock_the_email_with_429_and_retry_after(db_url):
    with app_client(db_url, login_max_failures=3, login_lockout_seconds=120) as client:
        assert register(client, email="target@example.com").status_code == 201
        for _ in range(3):
            assert login(client, "target@example.com", "wrong-password").status_code == 401
        locked = login(client, "TARGET@example.com", "a-long-password")  # even the right password
        assert locked.status_code == 429
        assert 1 <= int(locked.headers["retry-after"]) <= 120
        assert "detail" in locked.json()
        # Other emails are not affected.
        assert register(client, email="other@example.com").status_code == 201
        assert login(client, "other@example.com", "a-long-password").status_code == 200


def test_unknown_emails_are_throttled_too(db_url):
    with app_client(db_url, login_max_failures=2) as client:
        for _ in range(2):
            assert login(client, "ghost@example.com", "guess").status_code == 401
        assert login(client, "ghost@example.com", "guess").status_code == 429


def test_a_successful_login_clears_the_count(db_url):
    with app_client(db_url, login_max_failures=3) as client:
        assert register(client, email="forgetful@example.com").status_code == 201
        for _ in range(2):
            assert login(client, "forgetful@example.com", "wrong").status_code == 401
        assert login(client, "forgetful@example.com", "a-long-password").status_code == 200
        for _ in range(2):
            assert login(client, "forgetful@example.com", "wrong").status_code == 401
        assert login(client, "forgetful@example.com", "a-long-password").status_code == 200


def test_the_throttle_holds_across_two_app_instances(db_url):
    with (
        app_client(db_url, login_max_failures=4) as first,
        app_client(db_url, login_max_failures=4) as second,
    ):
        assert register(first, email="shared@example.com").status_code == 201
        for instance in (first, second, first, second):
            assert login(instance, "shared@example.com", "wrong").status_code == 401
        for instance in (first, second):
            response = login(instance, "shared@example.com", "a-long-password")
            assert response.status_code == 429
            assert int(response.headers["retry-after"]) >= 1


def test_tokens_are_signed_with_the_configured_key(client, factory):
    from jose import jwt

    user = factory.student()
    claims = jwt.decode(user.token, TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == str(user.id) and claims["role"] == "student"
    assert claims["exp"] > claims["iat"]
