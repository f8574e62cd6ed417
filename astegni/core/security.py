"""Password hashing (Argon2id) and JWT access/refresh tokens (HS256 only)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from jose import jwk, jwt
from jose.backends.base import Key

from astegni.core.errors import Unauthorized
from astegni.core.settings import Settings

ALGORITHM = "HS256"
MAX_ID = 2_147_483_647


@lru_cache
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def hash_password(settings: Settings, password: str) -> str:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib).hash(password)


def verify_password(settings: Settings, password_hash: str, password: str) -> bool:
    try:
        return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib).verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verified against when the email is unknown, so both failures take the same time.
_DUMMY_PASSWORD = secrets.token_urlsafe(16)


def dummy_verify(settings: Settings) -> None:
    verify_password(settings, _dummy_hash(settings), _DUMMY_PASSWORD + "x")


@lru_cache
def _dummy_hash_for(time_cost: int, memory_kib: int) -> str:
    return _hasher(time_cost, memory_kib).hash(_DUMMY_PASSWORD)


def _dummy_hash(settings: Settings) -> str:
    return _dummy_hash_for(settings.argon2_time_cost, settings.argon2_memory_kib)


@dataclass(frozen=True)
class Claims:
    user_id: int
    role: str | None
    token_type: str
    expires: int = 0  # exp, seconds since the epoch
    # The login this token belongs to (refresh_families.id); jti names one refresh token of it.
    family: int | None = None
    jti: str | None = None


def _encode(settings: Settings, claims: dict, lifetime: timedelta) -> str:
    now = datetime.now(UTC)
    body = {**claims, "iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp())}
    return jwt.encode(body, settings.secret_key, algorithm=ALGORITHM)


def new_jti() -> str:
    return secrets.token_urlsafe(16)


def access_token(settings: Settings, user_id: int, role: str, family: int | None = None) -> str:
    claims = {"sub": str(user_id), "role": role, "type": "access"}
    if family is not None:
        claims["fam"] = family
    return _encode(settings, claims, timedelta(minutes=settings.access_token_minutes))


def issue_tokens(settings: Settings, user_id: int, role: str, family: int, jti: str) -> dict[str, str]:
    """An access token and the refresh token `jti` of login `family` (see astegni/accounts/refresh.py)."""
    access = access_token(settings, user_id, role, family)
    refresh = _encode(
        settings,
        {"sub": str(user_id), "role": role, "type": "refresh", "fam": family, "jti": jti},
        timedelta(days=settings.refresh_token_days),
    )
    return {"access_token": access, "refresh_token": refresh, "token_type": "bearer"}


def decode_token(settings: Settings, token: str, expected_type: str = "access") -> Claims:
    """Verify a token; every failure, whatever python-jose raises, is a 401."""
    if not settings.secret_key:  # Settings refuses to start without one; never verify with ""
        raise Unauthorized()
    claims = _verified(settings.secret_key, token)
    if claims.token_type != expected_type or claims.expires <= time.time():
        raise Unauthorized()
    return claims


@lru_cache
def _verifying_key(secret_key: str) -> Key:
    # Given the secret as a string, python-jose tries it as a JSON key set and then builds this
    # key on every verification: a third of its cost.
    return jwk.construct(secret_key, ALGORITHM)


# A client sends the same token on every request; verifying its signature once per process
# saves a tenth of a request's CPU. Only verified tokens are kept (a failure raises, and
# lru_cache keeps no exceptions); expiry is checked on every use.
@lru_cache(maxsize=4096)
def _verified(secret_key: str, token: str) -> Claims:
    try:
        body = jwt.decode(
            token,
            _verifying_key(secret_key),
            algorithms=[ALGORITHM],
            options={"require_exp": True, "require_sub": True, "require_iat": True},
        )
        user_id = int(body["sub"])
        role = body.get("role")
        token_type = body.get("type", "access")
        expires = int(body["exp"])
        family = body.get("fam")
        jti = body.get("jti")
    except Exception:  # JWTError, JWKError (alg: none), ValueError, KeyError, ...
        raise Unauthorized() from None
    # users.id is a PostgreSQL integer: a larger sub would fail in the query, not here.
    if not isinstance(role, str | None) or not isinstance(token_type, str) or not 0 < user_id <= MAX_ID:
        raise Unauthorized()
    family_ok = family is None or (type(family) is int and 0 < family < 2**63)
    if not family_ok or not isinstance(jti, str | None):
        raise Unauthorized()
    return Claims(user_id, role, token_type, expires, family, jti)
