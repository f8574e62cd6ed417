"""QA check of duplicate prevention for session requests, against a live server.

    python test_duplicate_session_request.py [--base-url URL] [--email E] [--password P]
        [--tutor-id N] [--package-id N] [--other-package-id N]

Each flag also reads an environment variable (BASE_URL, QA_EMAIL, QA_PASSWORD, QA_TUTOR_ID,
QA_PACKAGE_ID, QA_OTHER_PACKAGE_ID); the defaults are the demo student and the first two packages
of demo tutor 2 (packages 1 and 2). Logs in, sends a request, sends the same request again (must
be 409), sends one for the other package, then cancels the requests it made, so it can run again
and again. Needs only requirements.txt (httpx is a runtime dependency for it).

stdout holds exactly the four ✓ lines, or a ✗ line with the server's answer; notes (left-over
requests cancelled before the run) go to stderr. Exit status 0 when all four hold, else 1.

Not a pytest module: pytest only collects tests/ (pyproject testpaths).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import httpx

DEMO = {
    "base_url": "http://localhost:8000",
    "email": "student@astegni.demo",
    "password": "StudentDemo1!",
    "tutor_id": 2,
    "package_id": 1,
    "other_package_id": 2,
}


class Failed(Exception):
    """A check did not hold; the message is the ✗ line."""


def describe(response: httpx.Response) -> str:
    body = response.text.strip() or "(empty body)"
    if len(body) > 2000:
        body = body[:2000] + " …"
    return f"HTTP {response.status_code} {response.reason_phrase}: {body}"


class QaClient:
    def __init__(self, base_url: str, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self.headers: dict[str, str] = {}

    def call(self, step: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, headers=self.headers, **kwargs)
        except httpx.HTTPError as exc:
            raise Failed(f"{step} failed: no answer from {self.base_url}{path}: {exc!r}") from None

    def wait_until_up(self, seconds: float) -> None:
        """The server may still be starting: ask /healthz until it answers, briefly."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.http.get("/healthz", timeout=2)
                return
            except httpx.HTTPError as exc:
                if time.monotonic() >= deadline:
                    raise Failed(
                        f"Server not reachable at {self.base_url} (waited {seconds:g}s): {exc!r}"
                    ) from None
                time.sleep(0.25)


def note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def login(qa: QaClient, email: str, password: str) -> dict[str, Any]:
    response = qa.call("Login", "POST", "/api/login", json={"email": email, "password": password})
    if response.status_code != 200:
        raise Failed(f"Login failed: {describe(response)}")
    body = json_of(response)
    qa.headers = {"Authorization": f"Bearer {body.get('access_token')}"}
    user = body["user"]
    # Only students and parents request sessions: take one of those roles if the account has it.
    if user.get("active_role") not in ("student", "parent"):
        role = next((r for r in ("student", "parent") if r in user.get("roles", [])), None)
        if role is None:
            raise Failed(
                f"Login failed: {email} is neither a student nor a parent (roles {user.get('roles')})"
            )
        response = qa.call("Login", "POST", "/api/switch-role", json={"role": role})
        if response.status_code != 200:
            raise Failed(f"Login failed: could not switch to the {role} role: {describe(response)}")
        qa.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        user["active_role"] = role
    return user


def request_body(args: argparse.Namespace, package_id: int, child_id: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tutor_id": args.tutor_id,
        "package_id": package_id,
        "message": "QA: duplicate prevention check (cancelled when the check ends)",
        "schedule_type": "recurring",
        "days": ["Monday", "Wednesday"],
        "start_time": "16:00",
        "end_time": "18:00",
    }
    if child_id is not None:
        body["requested_to_id"] = child_id
    return body


def first_child(qa: QaClient) -> int:
    response = qa.call("Login", "GET", "/api/parent/children")
    children = response.json().get("children", []) if response.status_code == 200 else []
    if not children:
        raise Failed(f"Login failed: the parent account has no child to book for: {describe(response)}")
    return children[0]["id"]


def cancel(qa: QaClient, request_id: int) -> None:
    response = qa.call("Cleanup", "POST", f"/api/session-requests/{request_id}/cancel")
    if response.status_code not in (200, 409):  # 409: no longer pending, nothing left to clean
        raise Failed(f"Cleanup failed: could not cancel request {request_id}: {describe(response)}")


def cancel_leftovers(qa: QaClient, args: argparse.Namespace) -> None:
    """Pending requests of this account for the two packages (an earlier run that was killed
    before its cleanup) would make the first request a 409: cancel them first, and say so."""
    response = qa.call(
        "Cleanup", "GET", "/api/session-requests/my-requests", params={"status": "pending", "limit": 100}
    )
    if response.status_code != 200:
        raise Failed(f"Listing pending requests failed: {describe(response)}")
    packages = {args.package_id, args.other_package_id}
    for request in response.json():
        if request.get("tutor_id") == args.tutor_id and request.get("package_id") in packages:
            cancel(qa, request["id"])
            note(
                f"note: cancelled left-over pending request {request['id']} (package {request['package_id']})"
            )


def create(qa: QaClient, step: str, body: dict[str, Any], made: list[int]) -> dict[str, Any]:
    response = qa.call(step, "POST", "/api/session-requests", json=body)
    if response.status_code != 200:
        raise Failed(f"{step} failed: {describe(response)}")
    data = json_of(response)
    if not data.get("success") or not isinstance(data.get("request_id"), int):
        raise Failed(f"{step} failed: unexpected answer {describe(response)}")
    made.append(data["request_id"])
    return data


def json_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def checks(qa: QaClient, args: argparse.Namespace, made: list[int]) -> None:
    qa.wait_until_up(args.wait)
    user = login(qa, args.email, args.password)
    print("✓ Login successful", flush=True)
    child = first_child(qa) if user["active_role"] == "parent" else None
    cancel_leftovers(qa, args)

    body = request_body(args, args.package_id, child)
    first = create(qa, "First request", body, made)
    print("✓ First request created successfully", flush=True)

    response = qa.call("Duplicate check", "POST", "/api/session-requests", json=body)
    answer = json_of(response)
    if response.status_code == 200:
        made.append(answer.get("request_id"))
        raise Failed(f"Duplicate was NOT prevented: {describe(response)}")
    if response.status_code != 409 or not str(answer.get("detail", "")).startswith("Request already sent"):
        raise Failed(f"Duplicate check failed: expected 409 Conflict, got {describe(response)}")
    if answer.get("existing_request_id") not in (None, first["request_id"]):
        raise Failed(f"Duplicate check failed: the 409 names another request: {describe(response)}")
    print("✓ Duplicate prevented successfully! (409 Conflict)", flush=True)

    create(qa, "Request for different package", request_body(args, args.other_package_id, child), made)
    print("✓ Request for different package created successfully", flush=True)


def cleanup(qa: QaClient, made: list[int]) -> None:
    """Cancel what this run made; every one is tried, the first problem is raised."""
    problem: Failed | None = None
    for request_id in made:
        if isinstance(request_id, int):
            try:
                cancel(qa, request_id)
            except Failed as exc:
                problem = problem or exc
    if problem:
        raise problem


def run(args: argparse.Namespace) -> None:
    qa = QaClient(args.base_url)
    made: list[int] = []
    try:
        try:
            checks(qa, args, made)
        except Failed:
            try:
                cleanup(qa, made)
            except Failed as exc:  # the check's failure is the one to report
                note(f"note: {exc}")
            raise
        cleanup(qa, made)
    finally:
        qa.http.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=env.get("BASE_URL", DEMO["base_url"]))
    parser.add_argument("--email", default=env.get("QA_EMAIL", DEMO["email"]))
    parser.add_argument("--password", default=env.get("QA_PASSWORD", DEMO["password"]))
    parser.add_argument("--tutor-id", type=int, default=int(env.get("QA_TUTOR_ID", DEMO["tutor_id"])))
    parser.add_argument("--package-id", type=int, default=int(env.get("QA_PACKAGE_ID", DEMO["package_id"])))
    parser.add_argument(
        "--other-package-id", type=int, default=int(env.get("QA_OTHER_PACKAGE_ID", DEMO["other_package_id"]))
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=float(env.get("QA_WAIT_SECONDS", "10")),
        help="how long to wait for the server to answer at start (seconds, default 10)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except Failed as exc:
        print(f"✗ {exc}", flush=True)
        return 1
    except Exception as exc:  # an answer of an unexpected shape: still a ✗ line, never a traceback
        print(f"✗ Unexpected failure: {exc!r}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
