"""One settings object, read from the environment once."""

from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parents[2]  # the checkout: app.py, .data/
# The embedded PostgreSQL (DATA_DIR/pg) and the generated secret key live here. ASTEGNI_DATA_DIR
# moves it (a second checkout, a test); read once at import, like the module constants below it.
DATA_DIR = Path(os.environ.get("ASTEGNI_DATA_DIR") or PROJECT_DIR / ".data")
MIN_SECRET_BYTES = 32

Limit = Annotated[int, Field(ge=0)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # Unset: an embedded PostgreSQL under .data/ (development mode).
    database_url: str | None = None
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1, le=64)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (the reverse proxy): comma-
    # separated addresses or networks, "*" for any. From anyone else the headers are ignored, so a
    # client talking to an instance directly cannot choose the address that rate limits and login
    # throttling see as request.client.host.
    forwarded_allow_ips: str = "127.0.0.1"

    access_token_minutes: int = Field(default=30, ge=1)
    refresh_token_days: int = Field(default=7, ge=1)
    # CORS_ORIGINS: comma-separated origins (or a JSON list); empty: same-origin only.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Requests of one process at the database at once (astegni/core/database.py). 16, not 8:
    # writes are bound by PostgreSQL's commit flushes, and more commits in flight share them.
    db_pool_size: int = Field(default=16, ge=1, le=200)
    db_pool_wait_seconds: float = Field(default=2.0, gt=0)
    db_connect_timeout_seconds: int = Field(default=5, ge=1)
    db_statement_timeout_ms: int = Field(default=5000, ge=100)

    request_expiry_days: float = Field(default=7, gt=0)
    expiry_sweep_seconds: float = Field(default=60, gt=0)
    default_timezone: str = "Africa/Addis_Ababa"

    # Limits: a count per window, past which the caller gets 429 (login: a lockout); 0 turns a
    # limit off.
    # Login attempts per email and client address in a window (the password is checked for at
    # most this many), then a lockout of that address; the email alone has a higher ceiling, so a
    # stranger guessing from a few addresses cannot lock the owner out.
    login_max_failures: Limit = 5
    login_account_max_failures: Limit = 20
    login_window_seconds: int = Field(default=900, ge=1)
    login_lockout_seconds: int = Field(default=300, ge=1)
    # An address that logged in to an account is exempt from its account-wide ceiling this long.
    login_trust_days: int = Field(default=30, ge=0)
    # Session requests one user may create per minute.
    request_rate_per_minute: Limit = 30
    # Chat writes per user. Conversation starts count the refused ones too, so that nobody can
    # probe user ids quickly; a refused send does not count (it writes nothing).
    chat_send_rate_per_minute: Limit = 60
    conversation_create_rate_per_hour: Limit = 60
    block_rate_per_hour: Limit = 30
    # Registrations per client address per hour: high enough for a school whose pupils share one
    # address, it bounds scripted account creation.
    register_rate_per_hour: Limit = 100
    child_create_rate_per_hour: Limit = 20
    # Open WebSockets per user in one server process; past it the oldest is closed.
    ws_max_sockets_per_user: Limit = 20
    # Request headers above this many bytes in total are refused with 431 (WebSocket handshakes
    # too); the server itself takes headers of any size.
    max_request_header_bytes: int = Field(default=16 * 1024, ge=1024)

    # Argon2id cost (RFC 9106's second recommended option by default); tests lower it.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)

    load_demo_data: bool = False

    # Email (astegni/notifications/). SMTP_URL: smtp://host:port, smtp://user:pass@host:587
    # (STARTTLS when credentials are given or with ?starttls=1), smtps://user:pass@host:465
    # (implicit TLS). Unset: each email is written as an .eml file under email_outbox_dir.
    smtp_url: str | None = None
    smtp_timeout_seconds: float = Field(default=20, gt=0)
    email_from: str = "Astegni <no-reply@astegni.local>"
    email_outbox_dir: Path = DATA_DIR / "outbox"
    # Where links in emails point: the requests page and the inbox under this address.
    public_base_url: str = "http://127.0.0.1:8000"
    # The sender's poll of the outbox, and how many rows one claim takes.
    email_poll_seconds: float = Field(default=5, gt=0)
    email_batch_size: int = Field(default=10, ge=1, le=500)
    # A claimed row is another process's to retry after this long (a crash mid-send); longer
    # than a batch can take (batch size x SMTP timeout).
    email_lease_seconds: float = Field(default=300, gt=0)
    # Retries: base x 2^(attempt - 1) seconds, capped; 'dead' after email_max_attempts.
    email_max_attempts: int = Field(default=8, ge=1)
    email_retry_base_seconds: float = Field(default=30, gt=0)
    email_retry_max_seconds: float = Field(default=3600, gt=0)
    # Chat digest: unread messages older than the delay are told of, at most once per interval
    # per conversation and recipient.
    chat_digest_delay_seconds: float = Field(default=900, gt=0)
    chat_digest_interval_seconds: float = Field(default=3600, gt=0)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        # Refused at start-up rather than at every send.
        if value and not value.startswith(("smtp://", "smtps://")):
            raise ValueError("SMTP_URL must be smtp://host:port or smtps://user:pass@host:465")
        return value or None

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @model_validator(mode="after")
    def _secret_key(self) -> Settings:
        if self.secret_key is None and self.embedded:
            self.secret_key = _development_secret()
        if not self.secret_key or len(self.secret_key.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"SECRET_KEY must be set to at least {MIN_SECRET_BYTES} bytes when DATABASE_URL "
                "is set (generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self


def _development_secret() -> str:
    """The embedded development mode keeps a generated key under .data/ across restarts."""
    path = DATA_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
