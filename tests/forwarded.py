"""The one place a client can see which scheme and host the app believes it was reached by: the
Link header of a paged list, built from the request's URL. Used to check whose X-Forwarded-*
headers are believed, on an instance (tests/test_forwarded_headers.py) and through nginx
(make test-deploy)."""

from __future__ import annotations

import uuid

import httpx

PASSWORD = "Forwarded-test-1"


def _register(http: httpx.Client, role: str) -> dict:
    body = {
        "email": f"fwd-{role}-{uuid.uuid4().hex[:10]}@example.com",
        "password": PASSWORD,
        "first_name": "Proxy",
        "father_name": role.title(),
        "roles": [role],
    }
    response = http.post("/api/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def next_page_link(base_url: str, headers: dict[str, str]) -> str:
    """A student with two requests asks for pages of one, sending `headers`: the Link it gets."""
    with httpx.Client(base_url=base_url, timeout=20) as http:
        tutor, student = _register(http, "tutor"), _register(http, "student")
        tutor_auth = {"Authorization": f"Bearer {tutor['access_token']}"}
        student_auth = {"Authorization": f"Bearer {student['access_token']}"}
        for n in range(2):
            package = http.post(
                "/api/tutor/packages", json={"name": f"P{n}", "hourly_rate": 100}, headers=tutor_auth
            )
            assert package.status_code == 201, package.text
            body = {
                "tutor_id": tutor["user"]["role_ids"]["tutor"],
                "package_id": package.json()["id"],
                "schedule_type": "recurring",
                "days": ["Monday"],
                "start_time": "09:00",
                "end_time": "10:00",
            }
            created = http.post("/api/session-requests", json=body, headers=student_auth)
            assert created.status_code == 200, created.text
        page = http.get("/api/session-requests/my-requests?limit=1", headers=student_auth | headers)
        assert page.status_code == 200, page.text
        return page.headers["link"]
