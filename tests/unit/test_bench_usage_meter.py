"""The benchmark's usage meter lets a SIGTERM's cancellation through, whenever it lands."""

from __future__ import annotations

import asyncio
import os

import pytest

from bench.procs import UsageMeter


async def test_a_run_cancelled_while_the_meter_closes_stays_cancelled() -> None:
    """A cancellation arriving while the meter stops its sampler used to be swallowed there, and
    a SIGTERMed bench went on to its next phase (seen once in CI under load)."""
    meter = UsageMeter(lambda: {"bench": os.getpid()}, interval=0.01)
    went_on = False

    async def phase() -> None:
        nonlocal went_on
        async with meter:
            await asyncio.sleep(0.05)
            # Cancelled as the block is left, so the cancellation lands in __aexit__'s wait.
            asyncio.get_running_loop().call_soon(run.cancel)
        went_on = True

    run = asyncio.create_task(phase())
    with pytest.raises(asyncio.CancelledError):
        await run
    assert not went_on
