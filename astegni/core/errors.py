"""Typed errors of the API, rendered by one handler as {"detail": ..., "code": ...}.

`detail` is English and stays as it is (clients match on it); `code` is a stable snake_case
name that clients translate. Each class has a default code; a raise site that people see gives
a specific one (`NotFound("Tutor not found", code="tutor_not_found")`). Every code must have an
entry in both page catalogs (static/i18n/*.json, under "error.<code>").
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error the client caused or must know about; rendered as {"detail", "code", **extra}."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        detail: Any,
        *,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.extra = extra


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, detail: str = "Could not validate credentials", code: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, code=code)


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Unprocessable(AppError):
    status_code = 422
    code = "validation_error"


class TooManyRequests(AppError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))}, code=code)


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"

    def __init__(self, detail: str = "Service temporarily unavailable", retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


# The codes of errors the framework raises, by status: unknown routes, wrong methods, bodies
# over the limit, and anything else Starlette answers by itself.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    431: "request_header_fields_too_large",
    500: "internal_error",
    503: "service_unavailable",
}


def status_code_name(status: int) -> str:
    """The code of an error the framework raised with only a status."""
    return STATUS_CODES.get(status, "bad_request" if status < 500 else "internal_error")
