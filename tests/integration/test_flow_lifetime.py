"""An endpoint's schedule workflow ends once it holds nothing and is asked nothing for its idle
period, so deleted or unlimited endpoints leave no workflow open; the next question starts
another run, and a schedule with an order queued stays."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from domain.flow import FlowState
from tests.integration.helpers import ask_schedule
from tests.waiting import eventually
from workflows.endpoint_flow import EndpointFlowWorkflow, OrderEnqueue, OrderRelease

IDLE = timedelta(seconds=1)


async def test_an_idle_schedule_ends_and_the_next_question_starts_it_again(client, settings, worker):
    flow_id = f"flow/tests/{uuid.uuid4().hex[:8]}"
    state = FlowState(account="tests", endpoint_id="ep_idle", idle_close=IDLE)
    first = await ask_schedule(client, settings, flow_id, state, "d1")
    handle = client.get_workflow_handle(flow_id)

    await asyncio.wait_for(handle.result(), timeout=30)  # ends on its own: nothing waits in it

    ended = await handle.describe()
    assert ended.status == WorkflowExecutionStatus.COMPLETED
    again = await ask_schedule(client, settings, flow_id, state, "d2")
    assert first.go_at is not None and again.go_at is not None
    assert (await client.get_workflow_handle(flow_id).describe()).run_id != ended.run_id


async def test_a_schedule_ends_when_the_deliveries_waiting_for_a_slot_stopped_asking(client, settings, worker):
    """Their endpoint was deleted or disabled: they will not ask again, nor be forgotten by
    someone else's question, since none comes."""
    flow_id = f"flow/tests/{uuid.uuid4().hex[:8]}"
    state = FlowState(account="tests", endpoint_id="ep_left", idle_close=IDLE, forget_after=timedelta(seconds=0.5))
    answers = [await ask_schedule(client, settings, flow_id, state, f"d{n}", per_second=0.2) for n in range(3)]
    assert [answer.go_at is None for answer in answers] == [False, True, True]  # one slot each 5 s
    handle = client.get_workflow_handle(flow_id)

    await asyncio.wait_for(handle.result(), timeout=30)

    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_a_schedule_with_an_order_queued_stays_open(client, settings, worker):
    flow_id = f"flow/tests/{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        EndpointFlowWorkflow.run,
        FlowState(account="tests", endpoint_id="ep_queued", idle_close=IDLE),
        id=flow_id,
        task_queue=settings.task_queue,
        start_signal="enqueue",
        start_signal_args=[OrderEnqueue(order_id="o1", delivery_ids=["d-head"])],
    )

    # Once its idle timer has fired and the workflow task after it completed, the run has
    # decided whether it is idle: an empty schedule would have ended in that task.
    await eventually(
        lambda: _event_types(handle),
        _an_idle_check_done,
        what="the idle timer fired and the workflow task after it completed",
    )

    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await handle.terminate("test over")


async def _event_types(handle: WorkflowHandle[Any, Any]) -> list[EventType.ValueType]:
    return [e.event_type async for e in handle.fetch_history_events()]


def _an_idle_check_done(types: list[EventType.ValueType]) -> bool:
    if EventType.EVENT_TYPE_TIMER_FIRED not in types:
        return False
    return EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED in types[types.index(EventType.EVENT_TYPE_TIMER_FIRED) :]


async def test_word_of_an_order_that_comes_after_its_delivery_ended_does_not_queue_it_again(client, settings, worker):
    """Ingest tells the schedule an event's order after starting its delivery; under load the
    delivery may ask, POST and end first. Queued again then, it would hold its order."""
    flow_id = f"flow/tests/{uuid.uuid4().hex[:8]}"
    state = FlowState(account="tests", endpoint_id="ep_fifo")
    first = await ask_schedule(client, settings, flow_id, state, "d-a", per_second=None, order_id="o1")
    assert first.go_at is not None
    handle = client.get_workflow_handle_for(EndpointFlowWorkflow.run, flow_id)
    await handle.signal(EndpointFlowWorkflow.release, OrderRelease(order_id="o1", delivery_id="d-a"))
    await handle.signal(EndpointFlowWorkflow.enqueue, OrderEnqueue(order_id="o1", delivery_ids=["d-a", "d-b"]))

    after = await ask_schedule(client, settings, flow_id, state, "d-b", per_second=None, order_id="o1")

    assert (after.go_at is not None, after.behind) == (True, None)
    await handle.terminate("test over")
