"""Typed errors of the API and the one handler that renders them as {"detail": ...}."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error the client caused or must know about; rendered as JSON {"detail": ..., **extra}."""

    status_code = 400

    def __init__(
        self,
        detail: Any,
        *,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}
        self.extra = extra


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401

    def __init__(self, detail: str = "Could not validate credentials") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class Unprocessable(AppError):
    status_code = 422


class TooManyRequests(AppError):
    status_code = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(AppError):
    status_code = 503

    def __init__(self, detail: str = "Service temporarily unavailable", retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
