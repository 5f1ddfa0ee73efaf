"""What the flow-control tests (and others that need workers of their own) share: a stack of
workers and an API for an account of their own on a task queue of their own, and endpoints and
events on it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.client import Client

from domain.ids import first_connection_id
from infra.temporal import connect
from settings import Settings
from tests.integration.helpers import (
    api_with,
    create_endpoint,
    delivery_outcome,
    post_event,
    tracking_event,
)
from tests.receiver import Receiver
from tests.waiting import eventually
from worker import delivery_worker


@asynccontextmanager
async def stack(
    client: Client, settings: Settings, workers: int = 1, **changes: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """`workers` workers and an API for an account of their own on a task queue of their own,
    with `changes` to the settings; the API client carries the account's token."""
    name = f"flow-{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex
    own = settings.model_copy(update={"task_queue": name, "api_tokens": {name: SecretStr(token)}, **changes})
    async with AsyncExitStack() as running:
        for n in range(workers):
            # Two workers of one process would share a client; Temporal wants one client a worker.
            # Each later one gets an identity of its own (a client's is pid@host), so histories
            # tell which worker ran what: worker_identity(n).
            own_client = client if n == 0 else await connect(own, identity=worker_identity(client, n))
            worker = await running.enter_async_context(delivery_worker(own_client, own))
            await running.enter_async_context(worker)
        api = await running.enter_async_context(api_with(own))
        api.headers["authorization"] = f"Bearer {token}"
        yield api


def worker_identity(client: Client, n: int) -> str:
    """The identity `stack()`'s n-th worker (from 0) shows in the histories of what it ran."""
    return client.identity if n == 0 else f"{client.identity}/worker-{n}"


async def ready_endpoint(api: httpx.AsyncClient, client: Client, url: str, **fields: Any) -> dict[str, Any]:
    """An endpoint whose first connection has been answered."""
    endpoint = await create_endpoint(api, url, **({"retry": {"enabled": True, "max_retries": 3}} | fields))
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    return endpoint


async def post_events(api: httpx.AsyncClient, count: int, **order: Any) -> list[str]:
    """Post events one after the other (each after the previous 202): their delivery ids."""
    ids = []
    for _ in range(count):
        accepted = await post_event(api, tracking_event(**order))
        ids.append(accepted["deliveries"][0]["id"])
    return ids


async def throttled(api: httpx.AsyncClient, endpoint_id: str) -> datetime:
    """Wait until the endpoint shows the pause its receiver asked for; when it ends."""
    shown = await eventually(
        lambda: _endpoint_shown(api, endpoint_id), lambda e: e["throttled_until"] is not None, what="the throttle"
    )
    return datetime.fromisoformat(shown["throttled_until"])


async def _endpoint_shown(api: httpx.AsyncClient, endpoint_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api.get(f"/v1/endpoints/{endpoint_id}")).json()
    return found


def arrivals_after(receiver: Receiver, url: str, index: int) -> list[float]:
    return [r.at for r in receiver.requests(url)[index + 1 :]]
