"""Raising an operational event (CONTRACT §11): a delivery to each other endpoint that subscribes."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.delivery import DeliveryInput, notice_deliveries
from domain.notices import DeliveryFailedNotice, EndpointDisabledNotice
from services.deliveries import start_delivery
from services.endpoints import EndpointRegistry


class Notices:
    """One account's operational events."""

    def __init__(self, client: Client, task_queue: str, account: str, registry: EndpointRegistry) -> None:
        self._client = client
        self._task_queue = task_queue
        self._account = account
        self._registry = registry

    async def raise_notice(self, notice: EndpointDisabledNotice | DeliveryFailedNotice) -> None:
        """Start the notice's deliveries; its id is derived from what it is about, so raising
        it again (a retried activity) starts nothing twice. Never to the endpoint concerned."""
        snapshot = await self._registry.snapshot()
        subscribers = [
            s for s in (snapshot.subscriptions(notice.event) if snapshot else []) if s.endpoint_id != notice.endpoint_id
        ]
        await asyncio.gather(*(self._start(d) for d in notice_deliveries(self._account, notice, subscribers)))

    async def _start(self, delivery: DeliveryInput) -> None:
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await start_delivery(self._client, self._task_queue, delivery)
