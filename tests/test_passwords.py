"""Passwords are taken exactly as typed, at least 8 characters, and not a common one."""

from __future__ import annotations

import pytest

from astegni.accounts.passwords import common_passwords

SPACED = "  correct horse battery  "


def register(client, password: str, email: str = "pw@example.com"):
    body = {"email": email, "password": password, "first_name": "P", "father_name": "W", "roles": ["parent"]}
    return client.post("/api/register", json=body)


def login(client, password: str, email: str = "pw@example.com"):
    return client.post("/api/login", json={"email": email, "password": password})


def test_a_password_is_taken_exactly_as_typed(client):
    assert register(client, SPACED).status_code == 201
    assert login(client, SPACED).status_code == 200
    assert login(client, SPACED.strip()).status_code == 401
    form = {"username": "pw@example.com", "password": SPACED}
    assert client.post("/api/login", data=form).status_code == 200


def test_a_childs_password_is_taken_exactly_as_typed(client):
    parent = register(client, "parent-password-9").json()
    child = {"email": "kid@example.com", "password": SPACED, "first_name": "K", "father_name": "D"}
    headers = {"Authorization": f"Bearer {parent['access_token']}"}
    assert client.post("/api/parent/children", json=child, headers=headers).status_code == 201
    assert login(client, SPACED, "kid@example.com").status_code == 200
    assert login(client, SPACED.strip(), "kid@example.com").status_code == 401


@pytest.mark.parametrize(
    "password", ["short7!", "       ", "Password123", "QWERTYUIOP", "12345678", "iloveyou1"]
)
def test_short_and_common_passwords_are_refused_with_422(client, password):
    response = register(client, password)
    assert response.status_code == 422, password
    assert "password" in response.text
    assert login(client, password).status_code == 401  # nothing was created


def test_the_common_list_is_shipped_and_sizeable():
    common = common_passwords()
    assert len(common) >= 1000
    assert {"password", "12345678", "qwertyui"} <= common
