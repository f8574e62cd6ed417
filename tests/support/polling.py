"""Polling with a deadline: the way a test waits for something another thread, process or server
does, instead of sleeping a guessed time and asserting after."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

INTERVAL = 0.05


class _Poll:
    """One poll's state: the last value or exception, for the message when time runs out."""

    def __init__(self, check: Callable[[], Any], timeout: float, what: str | None) -> None:
        self.check = check
        self.timeout = timeout
        self.what = what or getattr(check, "__name__", "condition")
        self.deadline = time.monotonic() + timeout
        self.last: Any = None
        self.error: BaseException | None = None

    def holds(self, result: Any) -> bool:
        self.last, self.error = result, None
        return bool(result)

    def failed(self, error: Exception) -> None:
        self.last, self.error = None, error

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def give_up(self) -> AssertionError:
        if self.error is not None:
            last = f"the last attempt raised {self.error!r}"
        else:
            last = f"the last value was {self.last!r}"
        return AssertionError(f"{self.what} did not hold within {self.timeout}s: {last}")


def eventually(
    check: Callable[[], Any], timeout: float = 15, interval: float = INTERVAL, what: str | None = None
) -> Any:
    """Calls check until it returns something truthy, and returns that. An exception from check
    (a failed assert inside it, a refused connection) counts as not yet. On timeout: an
    AssertionError that names the last value or exception."""
    poll = _Poll(check, timeout, what)
    while True:
        try:
            if poll.holds(check()):
                return poll.last
        except Exception as error:
            poll.failed(error)
        if poll.expired():
            raise poll.give_up() from poll.error
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], Any], timeout: float = 15, interval: float = INTERVAL, what: str | None = None
) -> Any:
    """eventually() for a test running on an event loop: waits without blocking the loop, and
    check may be a coroutine function."""
    poll = _Poll(check, timeout, what)
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if poll.holds(result):
                return poll.last
        except Exception as error:
            poll.failed(error)
        if poll.expired():
            raise poll.give_up() from poll.error
        await asyncio.sleep(interval)
