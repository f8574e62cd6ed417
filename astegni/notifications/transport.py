"""How a rendered email leaves: SMTP (SMTP_URL) or, without it, an .eml file and a log line."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

log = logging.getLogger("astegni.notifications")


class Transport(Protocol):
    async def __aenter__(self) -> Transport: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def send(self, message: EmailMessage) -> None: ...


class PermanentFailure(Exception):
    """The mail server refused the message for good (a 5xx answer): retrying will not help."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool


def parse_smtp_url(url: str) -> SmtpConfig:
    """smtp://host:port, smtp://user:pass@host:587 (STARTTLS with credentials or ?starttls=1),
    smtps://user:pass@host:465 (implicit TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://host:port or smtps://user:pass@host:465")
    implicit = parts.scheme == "smtps"
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    flag = parse_qs(parts.query).get("starttls", [""])[-1].lower()
    starttls = not implicit and (flag in ("1", "true", "yes") or (username is not None and flag == ""))
    return SmtpConfig(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 25),
        username=username,
        password=password,
        implicit_tls=implicit,
        starttls=starttls,
    )


class SmtpTransport:
    """One SMTP session per batch: connected on entry, each message sent on it."""

    def __init__(self, config: SmtpConfig, timeout: float) -> None:
        self.config = config
        self.timeout = timeout
        self._smtp: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> SmtpTransport:
        config = self.config
        self._smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.implicit_tls,
            start_tls=config.starttls,
            username=config.username,
            password=config.password,
            timeout=self.timeout,
        )
        await self._smtp.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()

    async def send(self, message: EmailMessage) -> None:
        assert self._smtp is not None
        try:
            await self._smtp.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(r.code >= 500 for r in exc.recipients):
                raise PermanentFailure(str(exc)) from exc
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500 and not isinstance(exc, aiosmtplib.SMTPServerDisconnected):
                raise PermanentFailure(f"{exc.code} {exc.message}") from exc
            raise


class FileTransport:
    """Development without a mail server: each email an .eml file a person can open."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def __aenter__(self) -> FileTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, message: EmailMessage) -> None:
        path = await asyncio.to_thread(self._write, message)
        log.info("email %r to %s written to %s", message["Subject"], message["To"], path)

    def _write(self, message: EmailMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").split("@", 1)[0]
        path = self.directory / f"{name}.eml"
        partial = path.with_suffix(".eml.partial")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, path)  # a reader never sees half a file
        return path


def transport_for(smtp_url: str | None, timeout: float, directory: Path) -> Transport:
    if smtp_url:
        return SmtpTransport(parse_smtp_url(smtp_url), timeout)
    return FileTransport(directory)
