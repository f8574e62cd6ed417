"""The base of every request body: unknown fields ignored, NUL bytes refused anywhere."""

from __future__ import annotations

from datetime import time
from email.message import Message
from typing import Annotated, Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

# The largest value of PostgreSQL's integer (the ids of users, conversations, requests, packages):
# a bound on every such id in a path, query or body, so that a larger one is a 422 rather than a
# DataError at the first query.
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1  # chat_messages.id is bigint


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(v) for v in value)
    return False


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_bytes(cls, data: Any) -> Any:
        # PostgreSQL cannot store NUL in text; refuse it as bad input rather than fail later.
        if contains_nul(data):
            raise ValueError("strings must not contain NUL characters")
        return data


def Text(max_length: int, min_length: int = 0) -> Any:  # noqa: N802 - reads as a type
    """A stripped string with declared limits (they appear in OpenAPI)."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length)]


Name = Text(100, 1)


def _without_offset(value: time) -> time:
    # A time of day in a schedule is local to the schedule's timezone; an offset ("10:00+03:00")
    # has no column to go to, and comparing it with a plain time raises.
    if value.tzinfo is not None:
        raise ValueError("a time of day without an offset, e.g. 14:00")
    return value


# A time of day (HH:MM) in a schedule: no UTC offset.
ClockTime = Annotated[time, AfterValidator(_without_offset), Field(description="HH:MM", examples=["14:00"])]


Body = TypeVar("Body", bound=BaseModel)


def parse_body(model: type[Body], raw: bytes, content_type: str | None) -> Body:
    """A JSON body validated in one pass from its bytes, with the 422 FastAPI gives for a
    declared body parameter (errors located under "body"), for the route that reads its body
    itself (POST /api/session-requests says why)."""
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    if content_type and not _is_json(content_type):
        error = {"type": "content_type", "loc": ("body",), "msg": "The body must be JSON (application/json)"}
        raise RequestValidationError([error])
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


def _is_json(content_type: str) -> bool:
    # As FastAPI decides whether a body is JSON: application/json or application/*+json.
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )
