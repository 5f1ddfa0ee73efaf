"""Waiting on what a user can observe, never on a guessed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    timeout: float = 15.0,
    what: str = "the condition",
    interval: float = 0.2,
) -> T:
    """Poll the async `probe` until `accept` holds on its value, and return that value.

    Raises AssertionError, with the last value seen, when `timeout` passes first:
    a wait that gives up silently would let the assertion after it mislead.
    """
    deadline = time.monotonic() + timeout
    value = await probe()
    while not accept(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last value: {value!r}")
        await asyncio.sleep(interval)
        value = await probe()
    return value
