"""Typed access to endpoints' flow-control workflows, for ingest and the delivery activity."""

from __future__ import annotations

import logging

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import Priority, WorkflowIDConflictPolicy
from temporalio.service import RPCError

from domain.flow import FlowState, SlotAnswer, SlotRequest
from domain.ids import flow_workflow_id
from infra.temporal import UpdateSlots, or_none, update_kept, update_with_start
from workflows.endpoint_flow import EndpointFlowWorkflow, OrderEnqueue, OrderRelease, SlotQuestion

log = logging.getLogger(__name__)

# Every POST to a limited or ordered endpoint waits for its schedule's answer: its tasks go
# ahead of deliveries (priority 2) and of re-runs (4), whatever backlog there is.
CONTROL_PRIORITY = Priority(priority_key=1)


class EndpointFlow:
    """One account's endpoints' schedules."""

    def __init__(self, client: Client, task_queue: str, account: str, slots: UpdateSlots) -> None:
        self._client = client
        self._task_queue = task_queue
        self._account = account
        # A burst's deliveries ask one schedule at once: past Temporal's 10 updates in flight,
        # the questions refused ended their runs interrupted, retried seconds later. The process's
        # own, shared by every account's EndpointFlow.
        self._slots = slots

    def _start(self, endpoint_id: str) -> WithStartWorkflowOperation[EndpointFlowWorkflow, None]:
        return WithStartWorkflowOperation(
            EndpointFlowWorkflow.run,
            FlowState(account=self._account, endpoint_id=endpoint_id),
            id=flow_workflow_id(self._account, endpoint_id),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=self._summary(endpoint_id),
            priority=CONTROL_PRIORITY,
        )

    def _handle(self, endpoint_id: str) -> WorkflowHandle[EndpointFlowWorkflow, None]:
        return self._client.get_workflow_handle_for(
            EndpointFlowWorkflow.run, flow_workflow_id(self._account, endpoint_id)
        )

    def _summary(self, endpoint_id: str) -> str:
        return f"Rate limit and FIFO queues of endpoint {endpoint_id} ({self._account})"

    async def ask(self, endpoint_id: str, request: SlotRequest, held_before: int) -> SlotAnswer:
        question = SlotQuestion(request=request, held_before=held_before)
        async with self._slots.held(flow_workflow_id(self._account, endpoint_id)):
            return await update_kept(
                # A start operation is used once: each send gets its own.
                lambda id: update_with_start(
                    self._client, EndpointFlowWorkflow.ask, question, start=self._start(endpoint_id), id=id
                )
            )

    async def enqueue(self, endpoint_id: str, order_id: str, delivery_ids: list[str]) -> None:
        """Record the order of accepted deliveries (starting the workflow if need be)."""
        await self._client.start_workflow(
            EndpointFlowWorkflow.run,
            FlowState(account=self._account, endpoint_id=endpoint_id),
            id=flow_workflow_id(self._account, endpoint_id),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="enqueue",
            start_signal_args=[OrderEnqueue(order_id=order_id, delivery_ids=delivery_ids)],
            static_summary=self._summary(endpoint_id),
            priority=CONTROL_PRIORITY,
        )

    async def release(self, endpoint_id: str, order_id: str, delivery_id: str) -> None:
        """The delivery ended: the next one of its order may go. Nothing to do without a schedule."""
        release = OrderRelease(order_id=order_id, delivery_id=delivery_id)
        await or_none(self._handle(endpoint_id).signal(EndpointFlowWorkflow.release, release))

    async def ordering_off(self, endpoint_id: str) -> None:
        """The endpoint's ordering was switched off, or the endpoint deleted: its waiting
        deliveries ask now (and go, or stop). Only a speed-up, so a failure is logged, not
        raised: each would ask on its own within its re-check (FIFO_RECHECK_MAX)."""
        try:
            await or_none(self._handle(endpoint_id).signal(EndpointFlowWorkflow.ordering_off))
        except RPCError as err:
            log.warning("Endpoint %s's waiting deliveries were not told to ask again: %s", endpoint_id, err.status.name)

    async def release_if_ended(self, endpoint_id: str, order_id: str, delivery_id: str) -> bool:
        """Release a delivery that heads its order but no longer runs; whether it was released."""
        description = await or_none(self._client.get_workflow_handle(delivery_id).describe())
        if description is not None and description.status == WorkflowExecutionStatus.RUNNING:
            return False
        await self.release(endpoint_id, order_id, delivery_id)
        return True
