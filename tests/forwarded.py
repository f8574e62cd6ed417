"""Which client address the app believes it was reached from, seen from outside: the login
throttle counts wrong passwords per email and client address, so five wrong guesses sent with
one X-Forwarded-For and a sixth with another show whether the header was believed (a fresh
address: 401) or not (the same address, now locked: 429). Used on an instance
(tests/test_forwarded_headers.py) and through nginx (make test-deploy)."""

from __future__ import annotations

import uuid

import httpx

PASSWORD = "Forwarded-test-1"
LOGIN_MAX_FAILURES = 5  # the default of LOGIN_MAX_FAILURES


def sixth_guess_status(base_url: str) -> int:
    """401 when the app believed the X-Forwarded-For of the guesses, 429 when it did not."""
    with httpx.Client(base_url=base_url, timeout=20) as http:
        email = f"fwd-{uuid.uuid4().hex[:10]}@example.com"
        body = {"email": email, "password": PASSWORD, "first_name": "Proxy", "father_name": "Test"}
        response = http.post("/api/register", json=body | {"roles": ["student"]})
        assert response.status_code == 201, response.text
        wrong = {"email": email, "password": "not-the-password"}
        for _ in range(LOGIN_MAX_FAILURES):
            response = http.post("/api/login", json=wrong, headers={"X-Forwarded-For": "203.0.113.7"})
            assert response.status_code == 401, response.text
        return http.post("/api/login", json=wrong, headers={"X-Forwarded-For": "203.0.113.8"}).status_code
