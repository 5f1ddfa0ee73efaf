"""Deliveries the API starts itself (tests of an endpoint; re-runs come later the same way)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle

from domain.delivery import DeliveryInput
from domain.records import DeliveryRecord
from workflows import search_attributes as sa
from workflows.delivery import DeliveryWorkflow


async def start_delivery(
    client: Client, task_queue: str, delivery: DeliveryInput
) -> WorkflowHandle[DeliveryWorkflow, DeliveryRecord]:
    return await client.start_workflow(
        DeliveryWorkflow.run,
        delivery,
        id=delivery.delivery_id,
        task_queue=task_queue,
        search_attributes=sa.delivery_search_attributes(delivery),
        static_summary=sa.delivery_summary(delivery),
    )
