"""What a new password must be: taken exactly as typed (never trimmed), 8 to 128 characters,
and not one of the most common passwords (common_passwords.txt, compared case-insensitively)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

MIN_LENGTH = 8
MAX_LENGTH = 128
_COMMON_FILE = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    lines = _COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def _not_common(password: str) -> str:
    if password.lower() in common_passwords():
        raise ValueError("This password is too common; choose one that is harder to guess")
    return password


# strip_whitespace=False overrides the models' trimming: spaces are part of a password.
NewPassword = Annotated[
    str,
    StringConstraints(strip_whitespace=False, min_length=MIN_LENGTH, max_length=MAX_LENGTH),
    AfterValidator(_not_common),
]
# A password offered at login: checked as typed, whatever rules applied when it was chosen.
GivenPassword = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=MAX_LENGTH)]
