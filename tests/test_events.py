"""The process's Sender (astegni/core/events.py): batches arrive complete and in order, a
connection the server ended costs no event, and a sender that is not running drops nothing
silently into a queue nobody reads."""

from __future__ import annotations

import asyncio
import json

from astegni.core.events import Sender
from tests.pg import end_sessions
from tests.support.notify import listening, received
from tests.support.polling import eventually_async


def with_sender(db_url: str, work) -> None:
    async def main() -> None:
        sender = Sender(db_url)
        task = asyncio.create_task(sender.run())
        await eventually_async(lambda: sender.running, 5)
        try:
            await work(sender)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def test_concurrent_sends_all_arrive_in_order(db_url):
    payloads = [json.dumps({"n": i, "text": "x" * 1000}) for i in range(200)]

    async def work(sender: Sender) -> None:
        await asyncio.gather(*(sender.send([p]) for p in payloads))

    with listening(db_url) as listener:
        with_sender(db_url, work)
        assert received(listener, len(payloads)) == payloads


def test_a_connection_the_server_ended_costs_no_event(db_url):
    async def work(sender: Sender) -> None:
        await sender.send(["first"])
        assert end_sessions(db_url, "astegni-events") == 1
        await sender.send(["second", "third"])  # reconnects, or retries on a fresh connection

    with listening(db_url) as listener:
        with_sender(db_url, work)
        assert received(listener, 3) == ["first", "second", "third"]


def test_a_sender_that_is_not_running_keeps_nothing(db_url):
    sender = Sender(db_url)

    async def work() -> None:
        await sender.send(["lost"])

    asyncio.run(work())
    assert sender._pending == []
