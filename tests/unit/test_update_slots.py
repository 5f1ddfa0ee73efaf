"""A process sends one workflow (a registry, a flow schedule) at most UPDATES_AT_ONCE updates at
a time (Temporal holds 10 in flight per workflow, and refusals past that came with held updates
dropped); the rest wait, and one that waits too long is refused as busy."""

from __future__ import annotations

import asyncio

import pytest

from infra.temporal import UpdatesBusy, UpdateSlots


async def test_no_more_than_the_slots_are_held_for_one_account_at_once() -> None:
    slots = UpdateSlots(at_once=2, wait_seconds=5)
    holding = peak = 0
    release = asyncio.Event()

    async def change() -> None:
        nonlocal holding, peak
        async with slots.held("shop-a"):
            holding += 1
            peak = max(peak, holding)
            await release.wait()
            holding -= 1

    changes = [asyncio.create_task(change()) for _ in range(5)]
    async with slots.held("shop-b"):  # another account's registry has slots of its own
        pass
    await asyncio.sleep(0.05)
    assert holding == 2
    release.set()
    await asyncio.gather(*changes)
    assert peak == 2


async def test_a_change_that_waits_past_its_time_is_refused_as_busy() -> None:
    slots = UpdateSlots(at_once=1, wait_seconds=0.05)
    async with slots.held("shop-a"):
        with pytest.raises(UpdatesBusy):
            async with slots.held("shop-a"):
                pass
    async with slots.held("shop-a"):  # the refused wait took no slot with it
        pass


async def test_a_workflow_is_forgotten_once_no_update_holds_or_awaits_its_slots() -> None:
    """A worker asks many endpoints' schedules over its life: it keeps slots only while in use."""
    slots = UpdateSlots(at_once=1, wait_seconds=0.05)
    async with slots.held("flow/shop-a/ep_1"):
        with pytest.raises(UpdatesBusy):
            async with slots.held("flow/shop-a/ep_1"):
                pass
        assert slots.workflows() == 1
    async with slots.held("flow/shop-a/ep_2"):
        pass
    assert slots.workflows() == 0
