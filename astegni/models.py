"""The base of every request body: unknown fields ignored, NUL bytes refused anywhere."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator


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
Password = Text(128, 8)
