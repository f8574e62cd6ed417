"""The short checks of make test-deploy, each through nginx: a function of the running cluster
that returns what it found wrong (nothing: passed). The first line of its docstring is printed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid

import httpx
from websockets.sync.client import connect

from bench.faults.load import register
from deploy.cluster import Cluster
from deploy.render import PROJECT_DIR
from tests.forwarded import sixth_guess_status

QA_EXPECTED = [
    "✓ Login successful",
    "✓ First request created successfully",
    "✓ Duplicate prevented successfully! (409 Conflict)",
    "✓ Request for different package created successfully",
]


def check_static(cluster: Cluster) -> list[str]:
    """nginx serves the pages itself, gzipped, hides its version, and passes the API and health on"""
    found = []
    with httpx.Client(base_url=cluster.url, headers={"Accept-Encoding": "gzip"}) as http:
        for path in ("/", "/inbox.html", "/view-tutor.html"):
            response = http.get(path)
            if response.status_code != 200 or response.headers.get("content-encoding") != "gzip":
                found.append(
                    f"GET {path}: {response.status_code}, {response.headers.get('content-encoding')}"
                )
            # The app adds X-Request-ID to everything it answers: its absence shows nginx answered.
            if "x-request-id" in response.headers:
                found.append(f"GET {path} was answered by the app, not by nginx")
            if response.headers.get("server") != "nginx":
                found.append(f"GET {path}: Server {response.headers.get('server')!r}")
            policy = response.headers.get("content-security-policy", "")
            nosniff = response.headers.get("x-content-type-options") == "nosniff"
            if "frame-ancestors 'none'" not in policy or not nosniff:
                found.append(f"GET {path}: no page security headers ({policy!r})")
        if http.get("/no-such-page.html").status_code != 404:
            found.append("a missing page is not 404")
        for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/docs-assets/swagger-ui.css"):
            response = http.get(path)
            if response.status_code != 200 or "x-request-id" not in response.headers:
                found.append(f"GET {path} did not reach the app: {response.status_code}")
    return found


def check_limits(cluster: Cluster) -> list[str]:
    """headers up to 16 KiB and bodies up to 1 MiB pass; larger ones are refused by nginx"""
    found = []
    with httpx.Client(base_url=cluster.url) as http:
        fits = http.get("/healthz", headers={"X-Padding": "a" * 15_000})
        too_big = http.get("/healthz", headers={"X-Padding": "a" * 17_000})
        if fits.status_code != 200 or too_big.status_code != 431:
            found.append(
                f"headers of 15 and 17 KB: {fits.status_code}, {too_big.status_code} (want 200, 431)"
            )
        body = b"x" * (1024 * 1024 + 1)
        response = http.post("/api/login", content=body, headers={"Content-Type": "application/json"})
        if response.status_code != 413:
            found.append(f"a body over 1 MiB: {response.status_code} (want 413)")
    return found


def check_qa_script(cluster: Cluster) -> list[str]:
    """the QA script passes against nginx, twice in a row, with the demo data"""
    for _ in range(2):
        result = subprocess.run(
            [
                sys.executable,
                str(PROJECT_DIR / "test_duplicate_session_request.py"),
                "--base-url",
                cluster.url,
            ],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0 or result.stdout.splitlines() != QA_EXPECTED:
            return [f"QA script exited {result.returncode}:\n{result.stdout}{result.stderr}"]
    return []


def check_ws_across_instances(cluster: Cluster) -> list[str]:
    """a WebSocket opened through nginx receives messages written through every instance"""
    with httpx.Client(base_url=cluster.url, timeout=10) as http:
        tutor, student = register(http, "tutor", "ws"), register(http, "student", "ws")
        headers = {"Authorization": f"Bearer {student['access_token']}"}
        body = {"type": "direct", "participant_user_ids": [tutor["user"]["id"]]}
        conversation = http.post("/api/chat/conversations", json=body, headers=headers).json()["id"]
    ws_url = cluster.url.replace("http://", "ws://", 1) + "/api/chat/ws"
    with connect(ws_url, open_timeout=5) as socket:
        socket.send(json.dumps({"type": "auth", "token": tutor["access_token"]}))
        if json.loads(socket.recv(timeout=5)).get("type") != "ready":
            return ["the socket was not subscribed"]
        sent = set()
        for instance in cluster.instances:  # around nginx, straight to each instance
            message = {"conversation_id": conversation, "content": f"via {instance.port}"}
            message["client_message_id"] = uuid.uuid4().hex
            response = httpx.post(f"{instance.url}/api/chat/messages", json=message, headers=headers)
            if response.status_code != 201:
                return [f"send through {instance.port}: {response.status_code} {response.text[:200]}"]
            sent.add(response.json()["message"]["id"])
        received: set[int] = set()
        deadline = time.monotonic() + 10
        while received != sent and time.monotonic() < deadline:
            try:
                frame = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            except TimeoutError:
                break
            if frame.get("type") == "message.created":
                received.add(frame["data"]["message"]["id"])
    return [] if received == sent else [f"sent {sorted(sent)}, the socket received {sorted(received)}"]


def check_units(cluster: Cluster) -> list[str]:
    """the systemd units pass systemd-analyze verify (paths pointed at this checkout)"""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("  (systemd-analyze not installed: units not verified)")
        return []
    units = cluster.tmp / "units"
    units.mkdir()
    for name in ("astegni@.service", "astegni.target"):
        text = (PROJECT_DIR / "deploy" / "systemd" / name).read_text()
        (units / name).write_text(text.replace("/opt/astegni", str(PROJECT_DIR)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(units / "astegni@8001.service"), str(units / "astegni.target")],
        capture_output=True,
        text=True,
    )
    return (
        [] if result.returncode == 0 and not result.stderr.strip() else [f"systemd-analyze: {result.stderr}"]
    )


def check_compose_rendered(cluster: Cluster) -> list[str]:
    """deploy/compose/ holds what the templates render today"""
    out = cluster.tmp / "compose"
    subprocess.run(
        [sys.executable, "-m", "deploy.render", "--target", "compose", "--out", str(out)],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
    )
    committed = PROJECT_DIR / "deploy" / "compose"
    return [
        f"deploy/compose/{name} is stale: python -m deploy.render --target compose --out deploy/compose"
        for name in ("nginx.conf", "pgbouncer.ini")
        if (out / name).read_text() != (committed / name).read_text()
    ]


def check_forwarded(cluster: Cluster) -> list[str]:
    """nginx overwrites the X-Forwarded-For a client sends: the app sees one address"""
    status = sixth_guess_status(cluster.url)
    return [] if status == 429 else [f"through nginx, a client's X-Forwarded-For was believed ({status})"]
