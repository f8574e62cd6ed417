"""Small factories: users through the real API, packages and family links through SQL."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from astegni.core.database import Database

PASSWORD = "correct-horse-battery"
_counter = itertools.count(1)


@dataclass
class TestUser:
    id: int
    email: str
    token: str
    refresh_token: str
    roles: list[str]
    role_ids: dict[str, int]
    first_name: str
    father_name: str
    password: str = PASSWORD
    extra: dict[str, Any] = field(default_factory=dict)

    __test__ = False  # not a pytest class

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.father_name}"


class Factory:
    def __init__(self, client: TestClient, db: Database) -> None:
        self.client = client
        self.db = db

    def user(self, roles: list[str] | None = None, **fields: Any) -> TestUser:
        n = next(_counter)
        body = {
            "email": f"user{n}-{uuid.uuid4().hex[:6]}@example.com",
            "password": PASSWORD,
            "first_name": f"First{n}",
            "father_name": f"Father{n}",
            "roles": roles or ["student"],
        } | fields
        response = self.client.post("/api/register", json=body)
        assert response.status_code == 201, response.text
        data = response.json()
        user = data["user"]
        return TestUser(
            id=user["id"],
            email=user["email"],
            token=data["access_token"],
            refresh_token=data["refresh_token"],
            roles=user["roles"],
            role_ids=user["role_ids"],
            first_name=user["first_name"],
            father_name=user["father_name"],
            password=body["password"],
        )

    def as_role(self, user: TestUser, role: str) -> TestUser:
        response = self.client.post("/api/switch-role", json={"role": role}, headers=user.headers)
        assert response.status_code == 200, response.text
        user.token = response.json()["access_token"]
        return user

    def student(self, **fields: Any) -> TestUser:
        return self.user(["student"], **fields)

    def tutor(self, packages: int = 2, **fields: Any) -> TestUser:
        tutor = self.user(["tutor"], **fields)
        tutor.extra["packages"] = [self.package(tutor, name=f"Package {i + 1}") for i in range(packages)]
        return tutor

    def sample_tutor(self) -> TestUser:
        """Selam Bekele with two packages the page tests name: Algebra Basics (ETB 250.00, weekly
        on Monday and Wednesday, 16:00-18:00) and Physics Exam Prep (ETB 400.00, specific dates,
        in person)."""
        tutor = self.user(["tutor"], first_name="Selam", father_name="Bekele")
        tutor.extra["packages"] = [
            self.package(
                tutor,
                name="Algebra Basics",
                description="Equations, functions and graphs for grades 9-10.",
                hourly_rate=Decimal("250.00"),
                schedule_days=["Monday", "Wednesday"],
                start_time="16:00",
                end_time="18:00",
            ),
            self.package(
                tutor,
                name="Physics Exam Prep",
                description="Mechanics and electricity, past national exam papers.",
                hourly_rate=Decimal("400.00"),
                schedule_type="specific_dates",
                session_format="in_person",
            ),
        ]
        return tutor

    def package(self, tutor: TestUser, **fields: Any) -> dict[str, Any]:
        values = {
            "tutor_id": tutor.role_ids["tutor"],
            "name": "Mathematics Grade 10",
            "description": "Algebra and geometry",
            "hourly_rate": Decimal("250.00"),
            "is_active": True,
        } | fields
        columns = ", ".join(values)
        params = ", ".join(f"%({k})s" for k in values)
        with self.db.transaction() as cur:
            cur.execute(f"INSERT INTO tutor_packages ({columns}) VALUES ({params}) RETURNING *", values)
            return dict(cur.fetchone())

    def parent(self, children: int = 2, **fields: Any) -> TestUser:
        parent = self.user(["parent"], **fields)
        parent.extra["children"] = [self.child(parent) for _ in range(children)]
        return parent

    def child(self, parent: TestUser) -> TestUser:
        child = self.student()
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO parent_children (parent_id, student_id) VALUES (%s, %s)",
                (parent.role_ids["parent"], child.role_ids["student"]),
            )
        return child
