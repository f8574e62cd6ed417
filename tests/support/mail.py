"""A real SMTP server in the test process (aiosmtpd), collecting what it is sent."""

from __future__ import annotations

import threading
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.live import free_port
from tests.support.polling import eventually


class Collector:
    """aiosmtpd's handler: keeps each accepted message; `refuse` answers DATA with that reply."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: str | None = None
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook
        if self.refuse:
            return self.refuse
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"


class MailServer:
    """Started on a free 127.0.0.1 port; stop() and start() again on the same port (an outage)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.collector = Collector()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self.collector.lock:
            return list(self.collector.messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address.lower() in m["To"].lower()]

    def wait_for(
        self, predicate: Callable[[list[EmailMessage]], bool], timeout: float = 15
    ) -> list[EmailMessage]:
        """Polls until predicate(messages) holds; the messages then."""

        def probe() -> tuple[list[EmailMessage]] | None:
            messages = self.messages
            return (messages,) if predicate(messages) else None

        return eventually(probe, timeout, what="mail")[0]


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()
