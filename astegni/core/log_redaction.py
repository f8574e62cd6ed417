"""Tokens never reach a log line.

Older clients still open /api/chat/ws?token=...; uvicorn logs that URL (the WebSocket's
"accepted" line, the access log, debug traces). A filter on every handler of the root, uvicorn
and uvicorn.access loggers, and on uvicorn's own loggers, replaces the value of any token-like
query parameter and any JWT-shaped string in the message, its arguments and its traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
# token=, access_token=, refresh_token=, id_token= ... up to the next separator.
_TOKEN_PARAM = re.compile(r"(\b\w*token=)[^&\s\"'<>]+", re.IGNORECASE)
# A JWT anywhere (header.payload.signature, base64url; the header always starts with eyJ).
_JWT = re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*")

_HANDLER_LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error")
_DIRECT_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "astegni")


def redact(text: str) -> str:
    if "token" not in text.lower() and "eyJ" not in text:
        return text
    return _JWT.sub(REDACTED, _TOKEN_PARAM.sub(r"\1" + REDACTED, text))


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    """Rewrites the record in place (keeping the shape of its args, which uvicorn's access
    formatter unpacks) and never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact_value(arg) for key, arg in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactTokens()


def install() -> None:
    """Add the filter wherever a record may be written; idempotent. Call it after logging is
    configured (a later dictConfig replaces the handlers)."""
    for name in _DIRECT_LOGGERS:
        _add(logging.getLogger(name))
    for name in _HANDLER_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            _add(handler)


def _add(target: logging.Filterer) -> None:
    if not any(isinstance(f, RedactTokens) for f in target.filters):
        target.addFilter(_FILTER)
