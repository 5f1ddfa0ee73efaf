"""An endpoint's schedule workflow ends once it holds nothing and is asked nothing for its idle
period, so deleted or unlimited endpoints leave no workflow open; the next question starts
another run, and a schedule with an order queued by a running delivery stays."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from functools import partial
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


async def test_a_schedule_with_an_order_queued_by_a_running_delivery_stays_open(client, settings, worker):
    """At its idle check it tells each queued delivery its turn came: one that no longer runs
    (its word came as its endpoint was deleted) is forgotten and the one behind it heads the
    order; the schedule stays open for that one, which runs."""
    flow_id = f"flow/tests/{uuid.uuid4().hex[:8]}"
    # A running workflow stands in for the running delivery (a turn told is all it is sent).
    live = await client.start_workflow(
        EndpointFlowWorkflow.run,
        FlowState(account="tests", endpoint_id="ep_stand_in"),
        id=f"delivery/tests/{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
    )
    handle = await client.start_workflow(
        EndpointFlowWorkflow.run,
        FlowState(account="tests", endpoint_id="ep_queued", idle_close=IDLE),
        id=flow_id,
        task_queue=settings.task_queue,
        start_signal="enqueue",
        start_signal_args=[OrderEnqueue(order_id="o1", delivery_ids=["delivery/tests/never-started", live.id])],
    )

    await eventually(
        lambda: handle.query(EndpointFlowWorkflow.head, "o1"),
        lambda head: head == live.id,
        what="the ended one forgotten",
    )
    # Once a later idle timer has fired and the task after it completed, the run has decided
    # whether it is idle: a schedule holding nothing would have ended in that task.
    fired = sum(1 for t in await _event_types(handle) if t == EventType.EVENT_TYPE_TIMER_FIRED)
    await eventually(
        lambda: _event_types(handle),
        partial(_an_idle_check_done, after_timers=fired),
        what="another idle timer fired and the workflow task after it completed",
    )

    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert await handle.query(EndpointFlowWorkflow.head, "o1") == live.id
    await handle.terminate("test over")
    await live.terminate("test over")


async def test_a_schedule_whose_queued_deliveries_ended_unseen_ends(client, settings, worker):
    """Ingest's word of an order came as the endpoint was deleted, or its ordering switched
    off: the delivery it queued will never ask or be released."""
    handle = await client.start_workflow(
        EndpointFlowWorkflow.run,
        FlowState(account="tests", endpoint_id="ep_left_queued", idle_close=IDLE),
        id=f"flow/tests/{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
        start_signal="enqueue",
        start_signal_args=[OrderEnqueue(order_id="o1", delivery_ids=["delivery/tests/ended-unseen"])],
    )

    await asyncio.wait_for(handle.result(), timeout=30)

    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def _event_types(handle: WorkflowHandle[Any, Any]) -> list[EventType.ValueType]:
    return [e.event_type async for e in handle.fetch_history_events()]


def _an_idle_check_done(types: list[EventType.ValueType], after_timers: int = 0) -> bool:
    """Whether a timer fired after the first `after_timers` and a workflow task completed after it."""
    fired = [n for n, t in enumerate(types) if t == EventType.EVENT_TYPE_TIMER_FIRED]
    if len(fired) <= after_timers:
        return False
    return EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED in types[fired[after_timers] :]


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
