"""Reads of one account's registry share one in-flight query: no thundering herd after a change,
and no new query after a report that changed nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from temporalio.client import Client

from domain.delivery import DEFAULT_ACCOUNT
from domain.endpoints import DeliveryOutcome, HealthPolicy
from domain.ids import first_connection_id
from services.endpoints import EndpointRegistry, SnapshotCache
from settings import Settings
from tests.integration.helpers import create_endpoint, delivery_outcome
from tests.integration.stacks import post_events, ready_endpoint, stack
from tests.receiver import OK, error
from tests.waiting import eventually

PENDING = 50


async def test_fifty_retries_after_a_registry_change_cost_one_query(client, settings, receiver, monkeypatch):
    queries = 0
    query = EndpointRegistry._query_snapshot

    async def counted(self: EndpointRegistry):
        # As slow as a query is after a worker restart (the registry must be replayed first),
        # so that many retries ask while one query is under way.
        nonlocal queries
        queries += 1
        await asyncio.sleep(1.0)
        return await query(self)

    monkeypatch.setattr(EndpointRegistry, "_query_snapshot", counted)
    url = receiver.url(OK, *[error(500)] * PENDING, OK)
    async with stack(client, settings, retry_initial_interval=3.0, retry_backoff=1.0) as api:
        endpoint = await ready_endpoint(api, client, url)
        delivery_ids = [d for [d] in await asyncio.gather(*(post_events(api, 1) for _ in range(PENDING)))]
        await receiver.wait_for(url, 1 + PENDING)
        # Every delivery waits for its retry; the registry changes; all retries read it anew.
        edited = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"description": "changed"})
        assert edited.status_code == 200
        before = queries
        records = [await delivery_outcome(client, d) for d in delivery_ids]

    # The receiver answers its first 50 POSTs after the first connection with a 500, whichever
    # delivery makes them (on a busy machine a retry may come before the last first POST).
    assert {r.result for r in records} == {"success"} and sum(r.retry for r in records) == PENDING
    assert queries - before <= 3, f"{queries - before} registry queries for {PENDING} retries"


def _registry_reader(client: Client, settings: Settings) -> tuple[EndpointRegistry, Callable[[], Awaitable[int]]]:
    """The default account's registry, and its version as a fresh reader finds it."""
    registry = EndpointRegistry(client, settings.task_queue, DEFAULT_ACCOUNT, SnapshotCache(), settings.secret_box())

    async def version() -> int:
        snapshot = await registry.snapshot()
        assert snapshot is not None
        return snapshot.version

    return registry, version


async def test_a_report_that_changes_no_endpoint_keeps_the_readers_snapshots(api, client, settings, receiver):
    """Every change bumps the registry's version, and every reader then queries it anew: a
    report that changes nothing must not."""
    endpoint = await create_endpoint(api, receiver.url(OK))
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    registry, version = _registry_reader(client, settings)
    before = await version()
    now = datetime.now(UTC)
    policy = HealthPolicy(failures=50, seconds=0)

    def report(delivery: str, succeeded: bool) -> DeliveryOutcome:
        return DeliveryOutcome(
            endpoint_id=endpoint["id"], delivery_id=delivery, succeeded=succeeded, at=now, policy=policy
        )

    await registry.record_outcome(report("delivery/default/a/0", succeeded=True))  # no streak to reset
    await registry.record_outcome(report("delivery/default/b/0", succeeded=False))  # a change
    await registry.record_outcome(report("delivery/default/b/0", succeeded=False))  # the same again
    # A change last: signals are handled in order, so once it shows, the reports were handled.
    until = now + timedelta(hours=1)
    await registry.throttle(endpoint["id"], until, endpoint["url"])
    await eventually(lambda: registry.get(endpoint["id"]), lambda view: view.throttled_until == until, what="the pause")

    assert await version() == before + 2


async def test_an_edit_that_changes_nothing_keeps_updated_at_and_the_readers_snapshots(api, client, settings, receiver):
    """`PATCH {}` (or a field as it is) answered with a new `updated_at` and bumped the
    registry's version, so every reader queried the registry again for nothing."""
    created = await create_endpoint(api, receiver.url(OK), description="kept")
    await delivery_outcome(client, first_connection_id(created["id"]))  # its report comes before what is measured
    _, version = _registry_reader(client, settings)
    before = await version()
    endpoint = (await api.get(f"/v1/endpoints/{created['id']}")).json()
    unchanged = [await api.patch(f"/v1/endpoints/{endpoint['id']}", json=b) for b in ({}, {"description": "kept"})]
    kept = await version()
    changed = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"description": "edited"})

    assert [(r.status_code, r.json()) for r in unchanged] == [(200, endpoint)] * 2
    assert kept == before
    assert changed.status_code == 200 and changed.json()["updated_at"] > endpoint["updated_at"]
    assert await version() == before + 1
