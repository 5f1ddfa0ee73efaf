"""The per-process registry snapshot cache: never older than the version asked for."""

from __future__ import annotations

import asyncio
from typing import cast

from temporalio.client import Client

from domain.endpoints import FRESH_SECONDS, Endpoint, RegistrySnapshot
from services.endpoints import EndpointRegistry, SnapshotCache


def _endpoint() -> Endpoint:
    now = "2026-11-30T12:00:00Z"
    return Endpoint.model_validate(
        {
            "id": "ep_1",
            "url": "https://shop.example/h",
            "events": ["TRACKING_UPDATE"],
            "created_at": now,
            "updated_at": now,
        }
    )


def _snapshot(version: int) -> RegistrySnapshot:
    return RegistrySnapshot(version=version, endpoints={})


def test_a_snapshot_serves_its_version_and_older_ones_only():
    cache = SnapshotCache()
    assert cache.current("shop", 0, 0.0) is None
    cache.keep("shop", _snapshot(3), 0.0)

    assert cache.current("shop", 3, 0.0) == _snapshot(3)
    assert cache.current("shop", 2, 0.0) == _snapshot(3)
    assert cache.current("shop", 4, 0.0) is None  # the registry changed since: read it again
    assert cache.current("other", 0, 0.0) is None


def test_a_late_answer_never_replaces_a_newer_snapshot():
    cache = SnapshotCache()
    cache.keep("shop", _snapshot(5), 0.0)
    cache.keep("shop", _snapshot(4), 0.0)  # a query that was answered before the one that stored 5

    assert cache.current("shop", 5, 0.0) == _snapshot(5)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_first_attempt_trusts_a_snapshot_only_while_it_was_recently_confirmed():
    clock = _Clock()
    cache = SnapshotCache(clock)
    cache.keep("shop", _snapshot(3), clock.now)

    clock.now += 0.5
    assert cache.recent("shop", 3, within=1.0) == _snapshot(3)
    assert cache.recent("shop", 4, within=1.0) is None  # accepted under a newer registry than this snapshot
    clock.now += 1.0
    assert cache.recent("shop", 3, within=1.0) is None  # unconfirmed for too long: describe again
    assert cache.current("shop", 3, clock.now) == _snapshot(3)  # ... which confirms it
    assert cache.recent("shop", 3, within=1.0) == _snapshot(3)


async def test_trust_is_counted_from_when_the_confirming_read_was_asked():
    """A change made while a read was on its way may be missing from its answer: a snapshot is
    trusted for `within` from the moment the read was asked, however long its answer took, so
    that a change's caller, waiting that long after it was made, knows no one trusts an older copy."""
    clock = _Clock()
    cache = SnapshotCache(clock)

    async def slow_read() -> RegistrySnapshot:
        clock.now += 0.8  # the answer takes 0.8 s
        return _snapshot(3)

    await cache.read_once("shop", 3, slow_read)
    clock.now += 0.3
    assert cache.recent("shop", 3, within=1.0) is None  # 1.1 s after it was asked, 0.3 s after it came

    cache.current("shop", 3, asked_at=clock.now - 0.9)  # a describe asked 0.9 s ago confirms it
    assert cache.recent("shop", 3, within=1.0) == _snapshot(3)
    clock.now += 0.2
    assert cache.recent("shop", 3, within=1.0) is None


async def test_readers_of_one_version_share_one_read():
    cache = SnapshotCache()
    reads = 0
    release = asyncio.Event()

    async def read() -> RegistrySnapshot:
        nonlocal reads
        reads += 1
        await release.wait()
        return _snapshot(7)

    readers = [asyncio.create_task(cache.read_once("shop", 7, read)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*readers)

    assert reads == 1
    assert answers == [_snapshot(7)] * 50
    assert cache.current("shop", 7, 0.0) == _snapshot(7)


async def test_a_newer_version_is_read_anew_and_a_cancelled_reader_cancels_no_one():
    cache = SnapshotCache()
    release = asyncio.Event()
    versions: list[int] = []

    def reader(version: int):
        async def read() -> RegistrySnapshot:
            versions.append(version)
            await release.wait()
            return _snapshot(version)

        return read

    impatient = asyncio.create_task(cache.read_once("shop", 1, reader(1)))
    patient = asyncio.create_task(cache.read_once("shop", 1, reader(1)))
    newer = asyncio.create_task(cache.read_once("shop", 2, reader(2)))
    await asyncio.sleep(0)
    impatient.cancel()
    release.set()

    assert (await patient, await newer) == (_snapshot(1), _snapshot(2))
    assert versions == [1, 2]


class _SlowRegistry(EndpointRegistry):
    """Reads whose answers take the given times, each the registry as it was when asked."""

    def __init__(self, clock: _Clock, answers: list[tuple[float, RegistrySnapshot]]) -> None:
        super().__init__(cast(Client, None), "queue", "shop", SnapshotCache(clock))
        self._clock, self._answers = clock, answers

    async def snapshot(self) -> RegistrySnapshot | None:
        took, snapshot = self._answers.pop(0)
        self._clock.now += took
        return snapshot


async def test_a_read_answered_slower_than_the_trust_window_is_asked_again():
    """A second read: a change answers FRESH_SECONDS after it is made, so a read that took longer
    may hold the registry from before a change already answered (a POST began after a 204)."""
    before = RegistrySnapshot(version=1, endpoints={"ep_1": _endpoint()})
    after_delete = RegistrySnapshot(version=2, endpoints={})
    clock = _Clock()
    registry = _SlowRegistry(clock, [(FRESH_SECONDS + 0.3, before), (0.1, after_delete)])

    assert await registry.for_delivery("ep_1") is None
