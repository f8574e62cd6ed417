"""Request header size limit and the security headers every response carries."""

from __future__ import annotations

from typing import Any

TOO_LARGE_HEADERS = "Request headers too large"

# The pages, /docs included (Swagger UI from a pinned package, served same-origin), run only
# same-origin scripts and styles: no inline <script>, no on* attributes, no style="" (a script may
# still set element.style, which CSP does not govern). connect-src 'self' covers the pages' own
# WebSocket (ws:/wss: on the same host); Swagger UI draws its icons as data: images.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# JSON and everything else is data, never a document to render or frame.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"

_ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]


def header_bytes(scope: dict[str, Any]) -> int:
    """The size of the request's header section as sent: name, ": ", value and CRLF per line."""
    return sum(len(name) + len(value) + 4 for name, value in scope["headers"])


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` of a response plus nosniff, Referrer-Policy and the Content-Security-Policy that
    fits its content (a page or data); a header the route set itself is kept. A response without
    a content type gets no policy: a 304's headers replace those of the page the browser kept, so
    a data policy there would stop the page's own scripts and styles on the next reload."""
    names = {name.lower() for name, _ in headers}
    added = [pair for pair in _ALWAYS if pair[0] not in names]
    content_type = next((v for n, v in headers if n.lower() == b"content-type"), None)
    if b"content-security-policy" not in names and content_type is not None:
        policy = PAGE_POLICY if content_type.startswith(b"text/html") else DATA_POLICY
        added.append((b"content-security-policy", policy.encode()))
    return [*headers, *added]
