"""X-Forwarded-For is believed only from FORWARDED_ALLOW_IPS (the proxy): from anyone else it
is ignored, so a client cannot choose the address that rate limits and the login throttle see."""

from __future__ import annotations

import pytest

from tests.forwarded import sixth_guess_status
from tests.support.live import LiveServer


@pytest.mark.slow
def test_the_proxy_is_believed_and_anyone_else_is_not(db_url):
    trusted = LiveServer(db_url)  # FORWARDED_ALLOW_IPS defaults to 127.0.0.1: this test is the proxy
    try:
        assert sixth_guess_status(trusted.url) == 401  # another address: counted apart
    finally:
        trusted.stop()
    stranger = LiveServer(db_url, FORWARDED_ALLOW_IPS="192.0.2.1")  # some other proxy
    try:
        assert sixth_guess_status(stranger.url) == 429  # the header ignored: one address, locked
    finally:
        stranger.stop()
