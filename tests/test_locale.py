"""users.locale: chosen at registration, changed by PUT /api/me, carried by me/login/refresh."""

from __future__ import annotations

import pytest


def test_locale_defaults_to_english_and_is_carried_everywhere(client, factory) -> None:
    user = factory.user()
    assert client.get("/api/me", headers=user.headers).json()["locale"] == "en"

    response = client.put("/api/me", json={"locale": "am"}, headers=user.headers)
    assert response.status_code == 200 and response.json()["locale"] == "am"

    assert client.get("/api/me", headers=user.headers).json()["locale"] == "am"
    login = client.post("/api/login", json={"email": user.email, "password": user.password})
    assert login.json()["user"]["locale"] == "am"
    refreshed = client.post("/api/refresh", json={"refresh_token": login.json()["refresh_token"]})
    assert refreshed.json()["user"]["locale"] == "am"


def test_register_may_choose_amharic(client, factory) -> None:
    user = factory.user(locale="am")
    assert client.get("/api/me", headers=user.headers).json()["locale"] == "am"


@pytest.mark.parametrize(
    "body",
    [{"locale": "fr"}, {"locale": "AM"}, {"locale": None}, {}, [], "am"],
)
def test_put_me_rejects_anything_but_a_known_locale(client, factory, body) -> None:
    user = factory.user()
    response = client.put("/api/me", json=body, headers=user.headers)
    assert response.status_code == 422
    assert client.get("/api/me", headers=user.headers).json()["locale"] == "en"


def test_put_me_changes_only_the_callers_row(client, factory) -> None:
    me, other = factory.user(), factory.user()
    assert client.put("/api/me", json={"locale": "am"}, headers=me.headers).status_code == 200
    assert client.get("/api/me", headers=other.headers).json()["locale"] == "en"


def test_put_me_needs_a_token(client) -> None:
    assert client.put("/api/me", json={"locale": "am"}).status_code == 401


def test_register_rejects_an_unknown_locale(client) -> None:
    body = {
        "email": "x@example.com",
        "password": "a-long-password",
        "first_name": "A",
        "father_name": "B",
        "roles": ["student"],
        "locale": "de",
    }
    assert client.post("/api/register", json=body).status_code == 422
