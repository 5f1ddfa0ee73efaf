"""Starting deliveries from outside a workflow: events, tests of an endpoint, re-runs."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from domain.activity_contract import DELIVERY_FAILED
from domain.delivery import DeliveryInput, first_connection
from domain.endpoints import EndpointView
from domain.events import EventType
from domain.ids import test_delivery_id
from domain.records import DeliveryKind, DeliveryRecord
from domain.samples import SAMPLES
from services.endpoints import EndpointRegistry
from workflows.delivery import DeliveryWorkflow, delivery_start_options, in_current_shape


async def start_delivery(
    client: Client, task_queue: str, delivery: DeliveryInput, memo: Mapping[str, Any] | None = None
) -> WorkflowHandle[DeliveryWorkflow, DeliveryRecord]:
    return await client.start_workflow(
        DeliveryWorkflow.run,
        in_current_shape(delivery),
        task_queue=task_queue,
        **delivery_start_options(delivery, memo),
    )


async def ensure_first_connection(client: Client, task_queue: str, account: str, endpoint: EndpointView) -> None:
    """The new endpoint's first connection exists once this returns. The registry starts it
    beside its answer to the create, not before it: if that start is not done yet, this starts
    the same delivery (one id, so whichever comes second finds it started)."""
    delivery = first_connection(account, endpoint.id, endpoint.url, endpoint.retry.max_attempts)
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await start_delivery(client, task_queue, delivery)


async def ended_record(handle: WorkflowHandle[DeliveryWorkflow, DeliveryRecord]) -> DeliveryRecord:
    """A delivery's record once it ended: its run's result, or for a failed delivery (whose
    run fails, so the Web UI and Temporal's metrics count it) the record in the failure."""
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == DELIVERY_FAILED and cause.details:
            return DeliveryRecord.model_validate(cause.details[0])
        raise


class EndpointThrottled(Exception):
    """The receiver asked for a pause (CONTRACT §9): a test, which waits for its outcome, would wait that long."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"the receiver asked for a pause until {until.isoformat()}: no test is sent before then")
        self.until = until


async def send_test(
    client: Client,
    task_queue: str,
    account: str,
    registry: EndpointRegistry,
    endpoint_id: str,
    event: EventType = EventType.TRACKING_UPDATE,
    *,
    wait_seconds: float,
) -> tuple[str, DeliveryRecord | None]:
    """Send the sample of `event` (an order event) once, never retried, and wait up to
    `wait_seconds` for what came back: the test's delivery id, and its record, or None if it
    is still pending then (a rate limit's slot or an outage of every worker can hold it longer).

    Raises EndpointNotFound, and EndpointThrottled rather than keep the caller waiting out a
    receiver's pause (a throttle set after this check still holds the test until it ends).
    """
    endpoint = await registry.get(endpoint_id)
    if endpoint.throttled_until is not None and endpoint.throttled_until > datetime.now(UTC):
        raise EndpointThrottled(endpoint.throttled_until)
    test_id = f"test-{uuid.uuid4().hex[:16]}"
    delivery = DeliveryInput(
        delivery_id=test_delivery_id(test_id, endpoint_id),
        kind=DeliveryKind.TEST,
        account=account,
        endpoint_id=endpoint_id,
        endpoint_url=endpoint.url,
        event=SAMPLES[event](test_id),
        max_attempts=1,
    )
    handle = await start_delivery(client, task_queue, delivery)
    try:
        return handle.id, await asyncio.wait_for(ended_record(handle), wait_seconds)
    except TimeoutError:
        return handle.id, None
