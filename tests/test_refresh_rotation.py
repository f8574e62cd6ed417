"""Refresh tokens work once; a spent one revokes its whole login; logout; no-store on tokens."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from astegni.core import housekeeping as expiry
from tests.support.factories import PASSWORD


def refresh(client, token: str):
    return client.post("/api/refresh", json={"refresh_token": token})


def test_each_refresh_token_works_once_and_returns_a_new_pair(client, factory):
    user = factory.student()
    first = refresh(client, user.refresh_token)
    assert first.status_code == 200
    body = first.json()
    assert body["refresh_token"] != user.refresh_token
    assert (
        client.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"}).status_code == 200
    )
    second = refresh(client, body["refresh_token"])
    assert second.status_code == 200


def test_a_spent_refresh_token_revokes_the_whole_login(client, factory):
    user = factory.student()
    newest = refresh(client, user.refresh_token).json()["refresh_token"]
    replayed = refresh(client, user.refresh_token)
    assert replayed.status_code == 401 and replayed.headers["www-authenticate"] == "Bearer"
    assert refresh(client, newest).status_code == 401
    assert refresh(client, user.refresh_token).status_code == 401
    # Another login of the same user is a family of its own and unaffected.
    again = client.post("/api/login", json={"email": user.email, "password": PASSWORD}).json()
    assert refresh(client, again["refresh_token"]).status_code == 200


def test_parallel_refreshes_with_one_token_succeed_at_most_once(client, factory):
    user = factory.student()
    start = threading.Barrier(8)

    def attempt(_):
        start.wait()
        return refresh(client, user.refresh_token)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(attempt, range(8)))
    won = [r for r in responses if r.status_code == 200]
    assert len(won) <= 1
    assert {r.status_code for r in responses} <= {200, 401}
    # The reuse was seen: whatever the winner got is revoked with the family.
    for response in won:
        assert refresh(client, response.json()["refresh_token"]).status_code == 401


def test_logout_revokes_the_login(client, factory):
    user = factory.student()
    newest = refresh(client, user.refresh_token).json()["refresh_token"]
    response = client.post("/api/logout", json={"refresh_token": newest})
    assert response.status_code == 204 and response.content == b""
    assert refresh(client, newest).status_code == 401
    assert client.post("/api/logout", json={"refresh_token": "garbage"}).status_code == 401
    assert (
        client.post("/api/logout", json={"refresh_token": user.token}).status_code == 401
    )  # an access token


def test_switch_role_stays_in_the_same_login(client, factory):
    user = factory.user(["student", "parent"])
    switched = client.post("/api/switch-role", json={"role": "parent"}, headers=user.headers)
    assert switched.status_code == 200
    new_refresh = switched.json()["refresh_token"]
    refreshed = refresh(client, new_refresh)
    assert refreshed.status_code == 200 and refreshed.json()["user"]["active_role"] == "parent"
    # The refresh token from before the switch was spent by it: presenting it revokes the login.
    assert refresh(client, user.refresh_token).status_code == 401
    assert refresh(client, refreshed.json()["refresh_token"]).status_code == 401


def test_the_sweep_purges_expired_families(client, factory, db):
    user = factory.student()
    spare = factory.student()
    with db.transaction() as cur:
        cur.execute(
            "UPDATE refresh_families SET expires_at = now() - interval '1 second' WHERE user_id = %s",
            (user.id,),
        )
    expiry.sweep(db)
    with db.transaction() as cur:
        cur.execute("SELECT user_id FROM refresh_families WHERE user_id IN (%s, %s)", (user.id, spare.id))
        assert [row["user_id"] for row in cur.fetchall()] == [spare.id]
    assert refresh(client, user.refresh_token).status_code == 401


def test_responses_carrying_tokens_are_not_stored(client, factory):
    user = factory.user(["student", "parent"])
    responses = [
        client.post("/api/login", json={"email": user.email, "password": PASSWORD}),
        refresh(client, user.refresh_token),
        client.post("/api/switch-role", json={"role": "parent"}, headers=user.headers),
        client.post(
            "/api/register",
            json={
                "email": "no-store@example.com",
                "password": PASSWORD,
                "first_name": "A",
                "father_name": "B",
                "roles": ["student"],
            },
        ),
    ]
    for response in responses:
        assert response.status_code in (200, 201), response.text
        assert response.headers["cache-control"] == "no-store", response.request.url
