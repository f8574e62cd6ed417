"""ASGI middleware and exception handlers: request ids, access log, body limit, one error shape."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

import psycopg2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from astegni.core.database import is_unavailable
from astegni.core.errors import AppError, ServiceUnavailable, status_code_name
from astegni.core.http_headers import TOO_LARGE_HEADERS, header_bytes, with_security_headers

log = logging.getLogger("astegni.access")
errors_log = logging.getLogger("astegni.core.errors")

MAX_BODY_BYTES = 1024 * 1024
TOO_LARGE = "Request body too large (limit 1 MiB)"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _json_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    """Every error body: {"detail", "code", ...}; code defaults to the status's own."""
    return JSONResponse({"code": status_code_name(status)} | body, status_code=status, headers=headers)


class RequestMiddleware:
    """X-Request-ID in and out, one log line per request, 431 past `max_header_bytes` of headers
    (WebSocket handshakes too), 413 past 1 MiB of body, 422 for %00 in the URL, and the security
    headers of astegni/core/http_headers.py on every response."""

    def __init__(self, app: Any, max_header_bytes: int = 16 * 1024) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        # Checked before anything reads a header: the server (httptools) takes headers of any size.
        oversized = scope["type"] in ("http", "websocket") and header_bytes(scope) > self.max_header_bytes
        if scope["type"] == "websocket":
            if oversized:
                await _refuse_handshake(scope, send)
            else:
                await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                secured = with_security_headers(list(message.get("headers", [])))
                message["headers"] = [*secured, (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        query = scope.get("query_string", b"")
        if oversized:
            response = _json_error(431, {"detail": TOO_LARGE_HEADERS}, {"Connection": "close"})
        elif declared > MAX_BODY_BYTES:
            response = _json_error(413, {"detail": TOO_LARGE})
        elif b"%00" in query or b"\x00" in query:
            response = _json_error(422, {"detail": "Query string must not contain NUL characters"})
        else:
            response = None
        try:
            if response is not None:
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, _limited(receive), send_with_id)
        except _BodyTooLargeError:
            await _json_error(413, {"detail": TOO_LARGE})(scope, receive, send_with_id)
        except Exception:
            # Caught here rather than by Starlette's ServerErrorMiddleware, which sits outside this
            # middleware (so its 500 would lack X-Request-ID) and re-raises (a second traceback).
            errors_log.exception("unhandled error (request %s)", request_id)
            if status_holder.get("started"):
                raise
            body = {"detail": "Internal server error", "request_id": request_id}
            await _json_error(500, body)(scope, receive, send_with_id)
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s",
                    json.dumps(
                        {
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status_holder["status"],
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                            "request_id": request_id,
                        }
                    ),
                )


async def _refuse_handshake(scope: dict, send: Any) -> None:
    """A WebSocket handshake with oversized headers, refused before it is accepted: 431 where the
    server can send an HTTP response to a handshake, else a close (the server answers 403)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = json.dumps({"detail": TOO_LARGE_HEADERS, "code": status_code_name(431)}).encode()
        headers = with_security_headers([(b"content-type", b"application/json")])
        await send({"type": "websocket.http.response.start", "status": 431, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


class _BodyTooLargeError(StarletteHTTPException):
    # An HTTPException so that FastAPI's body parsing passes it on (it turns other exceptions
    # into 400) and the error handler renders it as 413.
    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE)


def _limited(receive: Any) -> Any:
    """A receive() that stops a chunked body that grows past the limit."""
    seen = 0

    async def receive_limited() -> dict:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                raise _BodyTooLargeError
        return message

    return receive_limited


def _request_id(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id", "")


def _allowed_methods(request: Request) -> set[str]:
    """The methods of the API routes whose path is the request's. The static pages, mounted at
    "/", also receive API paths asked with a method no route has; StaticFiles answers those 404
    (GET) or 405 without the Allow header RFC 9110 requires."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return methods


def _declare_plain_422s(app: FastAPI) -> None:
    """FastAPI declares every 422 as a list of validation errors, but some 422s carry one
    sentence (a NUL in the query string, an invalid cursor, an Idempotency-Key reused with
    another body): declare `detail` as either, so that the schema says what clients get."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # cached by FastAPI after the first call; the change below is too
        props = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError", {})
        props = props.get("properties", {})
        detail = props.get("detail")
        if detail is not None and "anyOf" not in detail:
            listed = {k: v for k, v in detail.items() if k != "title"}
            props["detail"] = {"title": "Detail", "anyOf": [listed, {"type": "string"}]}
        props.setdefault("code", {"title": "Code", "type": "string"})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    _declare_plain_422s(app)

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> JSONResponse:
        body = {"detail": exc.detail, "code": exc.code, **exc.extra}
        return _json_error(exc.status_code, body, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()
        ]
        return _json_error(422, {"detail": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status, detail, headers = exc.status_code, exc.detail, getattr(exc, "headers", None)
        if status in (404, 405) and not (headers and "Allow" in headers):
            allowed = _allowed_methods(request)
            if allowed or status == 405:  # an API path asked with a method it lacks: 405, not 404
                status, detail = 405, "Method Not Allowed"
                headers = (headers or {}) | {"Allow": ", ".join(sorted(allowed or {"GET", "HEAD"}))}
        return _json_error(status, {"detail": detail}, headers)

    # Database.call already turns these into ServiceUnavailable; this covers connections used
    # outside it (scripts' helpers, LISTEN), so that losing the database is never a 500.
    @app.exception_handler(psycopg2.Error)
    async def database_unavailable(request: Request, exc: psycopg2.Error) -> JSONResponse:
        if not is_unavailable(exc):
            raise exc  # a bug: RequestMiddleware answers 500 with the request id
        log.warning("database unavailable (request %s): %s", _request_id(request), str(exc).strip())
        unavailable = ServiceUnavailable("Database unavailable", retry_after=2)
        return _json_error(503, {"detail": unavailable.detail}, unavailable.headers)
