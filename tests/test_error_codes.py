"""Every error body is {"detail": <English>, "code": <stable snake_case>}, and every code the
server can send has a translation in both page catalogs."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from astegni.core import errors
from astegni.session_requests.messages import FIXED_ANSWERS as _FIXED_ANSWERS

ROOT = Path(__file__).resolve().parent.parent
SNAKE = re.compile(r"^[a-z]+(_[a-z]+)*$")


def codes_in_source() -> set[str]:
    """The codes the server can send: each error class's default, the framework's by status,
    the create outcomes, and every code="..." / "code": "..." written at a raise site."""
    found = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.AppError)
    }
    found |= set(errors.STATUS_CODES.values()) | set(_FIXED_ANSWERS)
    for path in [*(ROOT / "astegni").rglob("*.py"), ROOT / "session_request_endpoints.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "code"
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)  # not a WebSocket close code
            ):
                found.add(node.value.value)
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "code"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        found.add(value.value)
    return found


def test_every_code_is_snake_case_and_translated_in_both_catalogs() -> None:
    codes = codes_in_source()
    assert {"duplicate_pending_request", "tutor_not_found", "not_found", "validation_error"} <= codes
    for lang in ("en", "am"):
        catalog = json.loads((ROOT / "static" / "i18n" / f"{lang}.json").read_text())
        for code in codes:
            assert SNAKE.match(code), code
            assert catalog.get(f"error.{code}", "").strip(), f"{lang}.json lacks error.{code}"


def test_framework_errors_carry_a_code(client) -> None:
    assert client.get("/api/no-such-endpoint").json() == {"detail": "Not Found", "code": "not_found"}
    assert client.delete("/api/login").json()["code"] == "method_not_allowed"
    invalid = client.post("/api/register", json={"email": "x"})
    assert invalid.status_code == 422 and invalid.json()["code"] == "validation_error"
    assert isinstance(invalid.json()["detail"], list)
    anonymous = client.get("/api/me")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"


def test_raise_sites_people_see_carry_their_own_code(client, factory) -> None:
    student = factory.user()
    tutor = factory.tutor(packages=1)
    wrong = client.post("/api/login", json={"email": student.email, "password": "not-the-password"})
    assert wrong.json() == {"detail": "Incorrect email or password", "code": "bad_credentials"}
    missing = client.get("/api/view-tutor/999999", headers=student.headers)
    assert missing.json() == {"detail": "Tutor not found", "code": "tutor_not_found"}
    again = client.post(
        "/api/register",
        json={
            "email": student.email,
            "password": "a-long-password",
            "first_name": "A",
            "father_name": "B",
            "roles": ["student"],
        },
    )
    assert again.status_code == 409 and again.json()["code"] == "email_taken"
    forbidden = client.get("/api/session-requests/tutor", headers=student.headers)
    assert forbidden.status_code == 403 and set(forbidden.json()) == {"detail", "code"}
    assert tutor.id  # the tutor exists, so the 404 above is about the id, not an empty table
