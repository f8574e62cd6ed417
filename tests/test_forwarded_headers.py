"""X-Forwarded-Proto / X-Forwarded-For are believed only from FORWARDED_ALLOW_IPS (the proxy):
from anyone else they are ignored, so a client cannot choose the address or scheme the app sees."""

from __future__ import annotations

import pytest

from tests.forwarded import next_page_link
from tests.support.live import LiveServer

FORGED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


@pytest.mark.slow
def test_the_proxy_is_believed_and_anyone_else_is_not(db_url):
    trusted = LiveServer(db_url)  # FORWARDED_ALLOW_IPS defaults to 127.0.0.1: this test is the proxy
    try:
        assert next_page_link(trusted.url, FORGED).startswith("<https://127.0.0.1:")
        assert next_page_link(trusted.url, {}).startswith("<http://127.0.0.1:")
    finally:
        trusted.stop()
    stranger = LiveServer(db_url, FORWARDED_ALLOW_IPS="192.0.2.1")  # some other proxy
    try:
        assert next_page_link(stranger.url, FORGED).startswith("<http://127.0.0.1:")
    finally:
        stranger.stop()
