"""eventually(): the polling every test waits with. It returns the first truthy value, retries
through exceptions, and on timeout fails naming what it last saw."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.support.polling import eventually, eventually_async


def test_returns_the_first_truthy_value_after_retries():
    calls = itertools.count(1)
    assert eventually(lambda: [n] if (n := next(calls)) >= 3 else [], 5, interval=0) == [3]


def test_an_exception_counts_as_not_yet():
    calls = itertools.count(1)

    def check() -> str:
        if next(calls) < 3:
            raise ConnectionError("refused")
        return "up"

    assert eventually(check, 5, interval=0) == "up"


def test_on_timeout_it_names_the_last_value():
    values = itertools.count(1)
    with pytest.raises(
        AssertionError, match=r"queue length did not hold within 0.2s: the last value was \d+"
    ):
        eventually(lambda: next(values) < 0 or 0, 0.2, interval=0.01, what="queue length")


def test_on_timeout_it_names_the_last_exception():
    def check() -> None:
        raise ConnectionError("still refused")

    with pytest.raises(AssertionError, match="raised ConnectionError") as failure:
        eventually(check, 0.2, interval=0.01)
    assert isinstance(failure.value.__cause__, ConnectionError)


def test_the_async_form_lets_the_loop_run_and_awaits_coroutines():
    async def scenario() -> str:
        done = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, done.set)
        await eventually_async(done.is_set, 5)

        async def probe() -> str:
            return "awaited"

        return await eventually_async(probe, 5)

    assert asyncio.run(scenario()) == "awaited"
