"""The one error shape: {"detail": ...}, request ids, body limits, NUL bytes, and 500s that say
nothing about the inside."""

from __future__ import annotations

import re

from tests.support.factories import PASSWORD

ONE_MIB = 1024 * 1024


def test_unknown_paths_and_methods_answer_in_the_error_shape(client):
    missing = client.get("/api/no-such-endpoint")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found", "code": "not_found"}
    wrong_method = client.delete("/api/login")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"detail": "Method Not Allowed", "code": "method_not_allowed"}


def test_validation_errors_list_type_loc_and_msg(client):
    response = client.post("/api/register", json={"email": "x@example.com", "roles": ["student"]})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert {tuple(item["loc"]) for item in detail} >= {("body", "password"), ("body", "first_name")}
    for item in detail:
        assert set(item) == {"type", "loc", "msg"}  # never the input back, nor internals


def test_invalid_json_is_422(client, factory):
    user = factory.tutor(packages=0)
    response = client.post(
        "/api/tutor/packages",
        content=b'{"name": "x", "hourly_rate": ',
        headers=user.headers | {"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "detail" in response.json()


def test_path_ids_beyond_postgresql_integer_are_422_not_500(client, factory):
    user = factory.tutor(packages=0)
    for path in ("/api/view-tutor/2147483648", "/api/view-tutor/99999999999999999999/packages"):
        assert client.get(path, headers=user.headers).status_code == 422, path
    assert client.put("/api/tutor/packages/0", json={}, headers=user.headers).status_code == 422


def test_a_body_over_one_mib_is_413(client):
    response = client.post(
        "/api/register",
        content=b'{"email": "' + b"a" * (ONE_MIB + 10) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large (limit 1 MiB)", "code": "payload_too_large"}


def test_a_chunked_body_over_one_mib_is_413(client, factory):
    # No Content-Length: the limit is enforced while the body streams in, also on FastAPI's own
    # JSON parsing (which would otherwise turn the error into a 400).
    user = factory.tutor(packages=0)

    def chunks():
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'", "hourly_rate": 100}'

    for path, headers in (("/api/tutor/packages", user.headers), ("/api/login", {})):
        response = client.post(path, content=chunks(), headers=headers | {"content-type": "application/json"})
        assert response.status_code == 413, path
        assert response.json() == {
            "detail": "Request body too large (limit 1 MiB)",
            "code": "payload_too_large",
        }


def test_a_body_just_under_the_limit_is_read(client, factory):
    user = factory.tutor(packages=0)
    body = b'{"name": "x", "hourly_rate": 100, "padding": "' + b"p" * (ONE_MIB - 100) + b'"}'
    response = client.post(
        "/api/tutor/packages", content=body, headers=user.headers | {"content-type": "application/json"}
    )
    assert response.status_code == 201


def test_nul_in_a_json_string_is_422(client, factory):
    response = client.post(
        "/api/register",
        json={
            "email": "nul@example.com",
            "password": PASSWORD,
            "first_name": "Ab\x00ebe",
            "father_name": "Kebede",
            "roles": ["student"],
        },
    )
    assert response.status_code == 422
    parent = factory.parent(children=0)
    child = {"email": "c@example.com", "password": PASSWORD, "first_name": "C", "father_name": "D"}
    nested = client.post("/api/parent/children", json=child | {"grade_level": "\x00"}, headers=parent.headers)
    assert nested.status_code == 422
    assert client.post("/api/login", json={"email": "a\x00@example.com", "password": "x"}).status_code == 422
    assert (
        client.post("/api/login", data={"username": "a@example.com", "password": "x\x00"}).status_code == 422
    )


def test_nul_in_the_query_string_is_422(client, factory):
    user = factory.student()
    for url in ("/api/me?user_id=%00", "/api/me?x=a%00b"):
        response = client.get(url, headers=user.headers)
        assert response.status_code == 422, url
        assert response.json() == {
            "detail": "Query string must not contain NUL characters",
            "code": "validation_error",
        }


def test_a_500_carries_the_request_id_and_no_internals(client, factory, db):
    user = factory.student()
    # A real failure inside a handler: the schema no longer matches the code's queries.
    with db.transaction() as cur:
        cur.execute("ALTER TABLE users RENAME COLUMN father_name TO father_name_gone")
    response = client.get("/api/me", headers=user.headers | {"X-Request-ID": "trace-me-123"})
    assert response.status_code == 500
    assert response.json() == {
        "detail": "Internal server error",
        "code": "internal_error",
        "request_id": "trace-me-123",
    }
    assert response.headers["x-request-id"] == "trace-me-123"
    generated = client.get("/api/me", headers=user.headers)
    assert generated.status_code == 500
    assert generated.json()["request_id"] == generated.headers["x-request-id"]
    for text in (response.text, generated.text):
        assert "father_name" not in text and "psycopg2" not in text and "Traceback" not in text


def test_request_id_is_echoed_or_generated(client):
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123_DEF.4"})
    assert given.headers["x-request-id"] == "abc-123_DEF.4"
    generated = client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    # An id that could forge log lines or headers is replaced, not echoed.
    unsafe = client.get("/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 100})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])
    error = client.get("/api/me", headers={"X-Request-ID": "err-1"})
    assert error.status_code == 401 and error.headers["x-request-id"] == "err-1"


def test_health_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_openapi_declares_limits_and_error_responses(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    register = schemas["RegisterIn"]["properties"]
    assert register["password"]["maxLength"] == 128 and register["password"]["minLength"] == 8
    package = schemas["PackageIn"]["properties"]
    assert package["name"]["maxLength"] == 200
    assert "429" in spec["paths"]["/api/login"]["post"]["responses"]
    assert "403" in spec["paths"]["/api/switch-role"]["post"]["responses"]
    assert "404" in spec["paths"]["/api/tutor/packages/{package_id}"]["put"]["responses"]
    assert "/api/parent/children" in spec["paths"]
