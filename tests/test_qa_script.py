"""test_duplicate_session_request.py (the QA script) run as operators run it: a subprocess against
a live `python app.py`, with demo-like data made through the API."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests import pg
from tests.support.live import LiveServer, free_port

PROJECT_DIR = Path(__file__).resolve().parent.parent
SCRIPT = PROJECT_DIR / "test_duplicate_session_request.py"
PASSWORD = "QaStudent1!"
EXPECTED = [
    "✓ Login successful",
    "✓ First request created successfully",
    "✓ Duplicate prevented successfully! (409 Conflict)",
    "✓ Request for different package created successfully",
]


def register(base_url: str, roles: list[str]) -> dict:
    response = httpx.post(
        f"{base_url}/api/register",
        json={
            "email": f"qa-{uuid.uuid4().hex[:8]}@example.com",
            "password": PASSWORD,
            "first_name": "Qa",
            "father_name": roles[0].title(),
            "roles": roles,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def server(pg_url: str, template_db: str):
    """One live server for the module (with the demo data); each test makes its own users."""
    with pg.scratch_database(pg_url, template_db) as db_url:
        live = LiveServer(db_url, LOAD_DEMO_DATA="true")
        yield live
        live.stop()


@pytest.fixture
def demo(server) -> dict:
    """A student, and a tutor with two packages, on the live server."""
    student = register(server.url, ["student"])
    tutor = register(server.url, ["tutor"])
    headers = {"Authorization": f"Bearer {tutor['access_token']}"}
    packages = []
    for name in ("Mathematics Grade 10", "Physics Grade 11"):
        response = httpx.post(
            f"{server.url}/api/tutor/packages",
            json={"name": name, "hourly_rate": 250, "schedule_days": ["Monday"]},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        packages.append(response.json()["id"])
    return {
        "url": server.url,
        "email": student["user"]["email"],
        "token": student["access_token"],
        "tutor_id": tutor["user"]["role_ids"]["tutor"],
        "packages": packages,
    }


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def flags(demo: dict) -> list[str]:
    return [
        "--base-url", demo["url"],
        "--email", demo["email"],
        "--password", PASSWORD,
        "--tutor-id", str(demo["tutor_id"]),
        "--package-id", str(demo["packages"][0]),
        "--other-package-id", str(demo["packages"][1]),
    ]  # fmt: skip


def pending(demo: dict) -> list[dict]:
    response = httpx.get(
        f"{demo['url']}/api/session-requests/my-requests",
        params={"status": "pending"},
        headers={"Authorization": f"Bearer {demo['token']}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.slow
def test_passes_twice_in_a_row_and_cleans_up(demo):
    for _ in range(2):
        result = run_script(*flags(demo))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines() == EXPECTED
    assert pending(demo) == []


@pytest.mark.slow
def test_reads_the_environment_and_cancels_a_left_over_request(demo):
    # A pending request for the package, as a run killed before its cleanup would leave.
    response = httpx.post(
        f"{demo['url']}/api/session-requests",
        json={
            "tutor_id": demo["tutor_id"],
            "package_id": demo["packages"][0],
            "schedule_type": "recurring",
            "days": ["Friday"],
            "start_time": "09:00",
            "end_time": "10:00",
        },
        headers={"Authorization": f"Bearer {demo['token']}"},
    )
    assert response.status_code == 200, response.text
    leftover = response.json()["request_id"]
    env = {
        "PATH": "/usr/bin:/bin",
        "BASE_URL": demo["url"],
        "QA_EMAIL": demo["email"],
        "QA_PASSWORD": PASSWORD,
        "QA_TUTOR_ID": str(demo["tutor_id"]),
        "QA_PACKAGE_ID": str(demo["packages"][0]),
        "QA_OTHER_PACKAGE_ID": str(demo["packages"][1]),
    }
    result = run_script(env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == EXPECTED
    assert f"cancelled left-over pending request {leftover}" in result.stderr
    assert pending(demo) == []


@pytest.mark.slow
def test_defaults_are_the_demo_data(server):
    """Only --base-url: the demo student, demo tutor 2 and its packages 1 and 2."""
    for _ in range(2):
        result = run_script("--base-url", server.url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines() == EXPECTED


@pytest.mark.slow
def test_a_server_answer_that_fails_a_check_is_shown(demo):
    result = run_script(*flags(demo)[:4], "--password", "wrong-password", *flags(demo)[6:])
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith("✗ Login failed: HTTP 401 Unauthorized: {")
    assert "detail" in line


def test_fails_with_exit_1_against_a_dead_port():
    result = run_script("--base-url", f"http://127.0.0.1:{free_port()}", "--wait", "0.5")
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith("✗ Server not reachable at http://127.0.0.1:")


@pytest.mark.slow
def test_the_documented_example_body_works_on_the_demo_data(server):
    """tutor 2 with package 1, as the API's documentation writes the request body."""
    login = httpx.post(
        f"{server.url}/api/login", json={"email": "student@astegni.demo", "password": "StudentDemo1!"}
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    body = {
        "tutor_id": 2,
        "package_id": 1,
        "schedule_type": "recurring",
        "days": ["Monday", "Wednesday"],
        "start_time": "14:00",
        "end_time": "16:00",
        "message": "I need help with mathematics",
    }
    response = httpx.post(f"{server.url}/api/session-requests", json=body, headers=headers)
    assert response.status_code == 200, response.text
    cancel = httpx.post(
        f"{server.url}/api/session-requests/{response.json()['request_id']}/cancel", headers=headers
    )
    assert cancel.status_code == 200, cancel.text


def test_the_script_needs_only_the_runtime_requirements():
    """Every third-party module it imports is pinned in requirements.txt itself."""
    import ast
    import importlib.metadata

    tree = ast.parse(SCRIPT.read_text())
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    third_party = sorted(m for m in modules if m not in sys.stdlib_module_names and m != "__future__")
    assert third_party, "the script imports no third-party module: this test checks nothing"
    pinned = {
        line.split("==")[0].split("[")[0].strip().lower()
        for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    distributions = importlib.metadata.packages_distributions()
    for module in third_party:
        names = {d.lower() for d in distributions.get(module, [module])}
        assert names & pinned, f"{module} ({', '.join(names)}) is not pinned in requirements.txt"
