"""Registration per client address and children per parent are rate-limited (429 + Retry-After),
attempts that fail included; 0 turns a limit off."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from astegni.core.database import Database
from astegni.core.settings import Settings
from tests.support.factories import PASSWORD, Factory
from tests.support.live import TEST_SECRET, app_client


def account(**fields: object) -> dict:
    email = f"limit-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "first_name": "Lim", "father_name": "It"}
    return body | fields


def test_registration_is_limited_per_client_address_counting_failures(db_url):
    with app_client(db_url, register_rate_per_hour=3) as client:
        first = account(roles=["student"])
        assert client.post("/api/register", json=first).status_code == 201
        assert client.post("/api/register", json=first).status_code == 409  # a failure counts too
        assert client.post("/api/register", json=account(roles=["student"])).status_code == 201
        refused = client.post("/api/register", json=account(roles=["student"]))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        # Another address has its own allowance (the same app, its lifespan already running).
        elsewhere = TestClient(client.app, client=("203.0.113.9", 50000))
        assert elsewhere.post("/api/register", json=account(roles=["student"])).status_code == 201


def test_registration_limit_zero_is_off(db_url):
    with app_client(db_url, register_rate_per_hour=0) as client:
        for _ in range(5):
            assert client.post("/api/register", json=account(roles=["tutor"])).status_code == 201


def test_the_defaults_let_a_school_behind_one_address_register():
    settings = Settings(database_url="postgresql://db.example/astegni", secret_key=TEST_SECRET)
    assert settings.register_rate_per_hour == 100 and settings.child_create_rate_per_hour > 0


def test_children_creation_is_limited_per_parent(db_url):
    db = Database(db_url, pool_size=2)
    try:
        with app_client(db_url, child_create_rate_per_hour=2) as client:
            factory = Factory(client, db)
            parent, other = factory.parent(children=0), factory.parent(children=0)
            taken = account()
            made = client.post("/api/parent/children", json=taken, headers=parent.headers)
            assert made.status_code == 201, made.text
            again = client.post("/api/parent/children", json=taken, headers=parent.headers)
            assert again.status_code == 409  # counted all the same
            refused = client.post("/api/parent/children", json=account(), headers=parent.headers)
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert (
                client.post("/api/parent/children", json=account(), headers=other.headers).status_code == 201
            )
            children = client.get("/api/parent/children", headers=parent.headers).json()["children"]
            assert len(children) == 1
    finally:
        db.close()
