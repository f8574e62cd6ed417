"""HTTP-level hardening: the request-header limit (431, WebSocket handshakes too), the security
headers of every response, /docs served same-origin, and Link headers that ignore Host."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.support.requests import URL, request_body

EIGHT_MIB = 8 * 1024 * 1024


def test_headers_over_16_kib_are_431_before_any_token_work(client, factory):
    user = factory.student()
    huge = client.get("/api/me", headers={"Authorization": "Bearer " + "a" * EIGHT_MIB})
    assert huge.status_code == 431
    assert huge.json() == {"detail": "Request headers too large", "code": "request_header_fields_too_large"}
    # Many headers adding up count alike, whatever their names.
    spread = {f"X-Filler-{i}": "b" * 1000 for i in range(17)}
    assert client.get("/healthz", headers=spread).status_code == 431
    # Just under the limit is served as usual.
    assert client.get("/api/me", headers=user.headers | {"X-Filler": "c" * 15_000}).status_code == 200


@pytest.mark.slow
def test_the_header_limit_holds_through_the_real_server(live_server):
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        response = http.get("/api/me", headers={"Authorization": "Bearer " + "a" * EIGHT_MIB})
        assert response.status_code == 431
        assert response.headers["x-content-type-options"] == "nosniff"
        assert http.get("/healthz").status_code == 200  # the server is still well

    async def handshake() -> None:
        url = live_server.url.replace("http", "ws") + "/api/chat/ws"
        # Lines under the WebSocket library's own 8 KiB line limit, adding up past 16 KiB.
        filler = {f"X-Filler-{i}": "d" * 4000 for i in range(5)}
        async with websockets.connect(url, additional_headers=filler):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(handshake())
    assert refused.value.response.status_code == 431  # refused before the socket is accepted


def test_every_response_says_nosniff_and_pages_carry_a_strict_policy(client):
    for path in ("/healthz", "/api/me", "/openapi.json", "/js/api.js", "/api/no-such-endpoint"):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "same-origin", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
    for page in ("/", "/index.html", "/login.html", "/view-tutor.html", "/inbox.html", "/requests.html"):
        response = client.get(page)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, page
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, page
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-content-type-options"] == "nosniff"
        # Nothing inline that the policy would refuse.
        html = response.text
        assert "<script>" not in html and " onclick=" not in html and "style=" not in html, page


def test_a_revalidated_page_keeps_its_own_policy(client):
    """A reload revalidates the page (304): the browser keeps the page with the 304's headers, so
    the 304 must not carry the data policy that blocks the page's scripts and styles."""
    page = client.get("/requests.html")
    assert page.status_code == 200
    again = client.get("/requests.html", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304
    assert "default-src 'none'" not in again.headers.get("content-security-policy", "")
    assert again.headers["x-content-type-options"] == "nosniff"


def test_docs_are_served_from_pinned_same_origin_assets(client):
    docs = client.get("/docs")
    assert docs.status_code == 200
    policy = docs.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "http" not in docs.text.replace('"/', "")  # no third-party URL at all
    assert "<script>" not in docs.text  # no inline script for the policy to allow
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/js/api-docs.js"):
        assert asset in docs.text
        assert client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404


def test_the_link_header_is_relative_and_ignores_a_hostile_host(client, factory):
    student, tutor = factory.student(), factory.tutor(packages=3)
    for i in range(3):
        made = client.post(URL, json=request_body(tutor, i), headers=student.headers)
        assert made.status_code == 200, made.text
    response = client.get(
        f"{URL}/my-requests?limit=2&status=pending",
        headers=student.headers | {"Host": "evil.example"},
    )
    assert response.status_code == 200
    link = response.headers["link"]
    assert "evil.example" not in link and "testserver" not in link
    cursor = min(r["id"] for r in response.json())
    assert link == f'</api/session-requests/my-requests?limit=2&status=pending&before={cursor}>; rel="next"'


def test_deleting_a_request_card_says_deleted(client, factory):
    student, tutor = factory.student(), factory.tutor(packages=1)
    made = client.post(URL, json=request_body(tutor, 0), headers=student.headers)
    card = made.json()["message_id"]
    response = client.delete(f"/api/chat/messages/{card}", headers=student.headers)
    assert response.status_code == 409
    assert response.json()["detail"] == "Only text messages can be deleted here"
    edit = client.put(f"/api/chat/messages/{card}", json={"content": "x"}, headers=student.headers)
    assert edit.json()["detail"] == "Only text messages can be edited here"


def test_a_json_error_body_is_not_rendered_as_a_page(client):
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert json.loads(response.text)["detail"]
