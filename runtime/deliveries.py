"""Deliveries started from outside a workflow: tests of an endpoint, re-runs, recovery."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy

from domain.delivery import DeliveryInput
from domain.records import DeliveryKind, DeliveryRecord
from runtime.delivery_log import DeliveryLog
from runtime.registry import EndpointRegistry
from workflows import search_attributes as sa
from workflows.delivery import DeliveryWorkflow


class DeliveryStillPending(Exception):
    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"delivery {delivery_id} is still pending; re-run it once it has finished")


async def start_delivery(
    client: Client, task_queue: str, delivery: DeliveryInput, memo: Mapping[str, Any] | None = None
) -> WorkflowHandle[DeliveryWorkflow, DeliveryRecord]:
    return await client.start_workflow(
        DeliveryWorkflow.run,
        delivery,
        id=delivery.delivery_id,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,  # a delivery id names one delivery, ever
        task_queue=task_queue,
        search_attributes=sa.delivery_search_attributes(delivery),
        memo={**sa.delivery_memo(delivery), **(memo or {})},
        static_summary=sa.delivery_summary(delivery),
    )


def rerun_id(original: DeliveryInput) -> str:
    return f"{original.delivery_id}/rerun-{uuid.uuid4().hex[:8]}"


async def rerun_delivery(
    client: Client,
    task_queue: str,
    log: DeliveryLog,
    registry: EndpointRegistry,
    delivery_id: str,
    *,
    new_id: str | None = None,
    kind: DeliveryKind = DeliveryKind.RERUN,
) -> DeliveryInput:
    """Start a finished delivery again as a new one, with its endpoint's current configuration.

    Raises DeliveryNotFound, DeliveryStillPending, EndpointNotFound (the endpoint
    is gone) and, for a `new_id` already taken, WorkflowAlreadyStartedError.
    """
    execution = await log.describe(delivery_id)
    if execution.status == WorkflowExecutionStatus.RUNNING:
        raise DeliveryStillPending(delivery_id)
    original = await log.delivery_input(delivery_id, execution.run_id)
    endpoint = await registry.get(original.endpoint_id)
    rerun = original.model_copy(
        update={
            "delivery_id": new_id or rerun_id(original),
            "kind": kind,
            "endpoint_url": endpoint.url,
            "max_attempts": endpoint.retry.max_attempts,
            "rerun_of": delivery_id,
            "webhook_id": original.message_id,
        }
    )
    await start_delivery(client, task_queue, rerun)
    return rerun
