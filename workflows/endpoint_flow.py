"""An endpoint's flow control as an entity workflow: one per endpoint (`domain.ids.flow_workflow_id`).

Deliveries to an endpoint with a rate limit or FIFO ordering ask it for a slot
before each POST (an update, answered from its state: see `domain.flow`), so
every worker follows one schedule and the schedule survives any crash. It
starts with the first question and continues as new when its history grows.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.flow import TURN_CAME, FlowState, FlowSummary, SlotAnswer, SlotRequest

# Patch of the release handler since v0.2.0: the next delivery of the order is told that
# its turn came (DeliveryWorkflow's TURN_SIGNALLED), rather than finding out when it asks again.
# A run that replayed a release from before it keeps the old way until it continues as new
# (Temporal keeps a patch's first answer for the run), and says so to those who ask.
SIGNALS_TURN = "signals-turn"
# And of ordering_off, a signal the API may send while workers of the previous release run.
TELLS_UNORDERED = "tells-unordered"
# And of the run: it ends when idle (FlowState.idle_close), not only by continuing as new, so an
# endpoint deleted, or whose limit and ordering were removed, leaves no workflow open.
ENDS_WHEN_IDLE = "ends-when-idle"
# And this one: when idle, it forgets deliveries that stopped asking before it decides to end.
FORGETS_WHEN_IDLE = "forgets-when-idle"
# And of enqueue: word of a delivery that already ended does not queue it again.
LATE_WORD_OF_ENDED_IGNORED = "late-word-of-ended-ignored"
# And this one: when idle with orders queued, it forgets the queued deliveries that no longer
# run. Ingest's word of a delivery that came as its endpoint was deleted or its ordering switched
# off queued one that would never ask or be released, and kept the run open for good. Asked
# only by a run idle with orders queued.
FORGETS_ENDED_ORDERS = "forgets-ended-orders"
# And of ask: rate-limit slots come with a start's grace, kept free in every window
# (domain.flow.RateLimit.start_grace). A run that handed out slots without it replays them so, and goes
# on so until it continues as new: its record of the slots given stays what it gave. Asked
# only by a question with a rate limit.
KEEPS_SLOT_GRACE = "keeps-slot-grace"
TURNS_AT_ONCE = 50


class SlotQuestion(BaseModel):
    request: SlotRequest
    held_before: int = 0  # how often the asking delivery was told to wait already


class OrderRelease(BaseModel):
    order_id: str
    delivery_id: str


class OrderEnqueue(BaseModel):
    order_id: str
    delivery_ids: list[str]


@workflow.defn
class EndpointFlowWorkflow:
    @workflow.init
    def __init__(self, state: FlowState) -> None:
        self._state = state
        self._questions = 0
        self._words = 0  # of orders, from ingest (enqueue)
        self._signals_turns: bool | None = None  # SIGNALS_TURN's answer, once asked

    @workflow.run
    async def run(self, state: FlowState) -> None:
        # Updates that arrive while the run closes are retried by the server on the next
        # run, so no question is lost; a run is kept short so replays stay cheap.
        idle_close = self._state.idle_close if workflow.patched(ENDS_WHEN_IDLE) else None
        while True:
            asked, told = self._questions, self._words
            try:
                await workflow.wait_condition(self._time_to_continue, timeout=idle_close, timeout_summary="idle?")
                break
            except TimeoutError:
                # A question that comes as the run ends fails, and its delivery asks again,
                # which starts the next run (update-with-start). One that came while the idle
                # check waited on deliveries keeps the run.
                idle = self._questions == asked and await self._idle(told)
                if idle and self._questions == asked and workflow.all_handlers_finished():
                    return
        workflow.continue_as_new(self._state)

    async def _idle(self, told: int) -> bool:
        """Whether the schedule holds nothing once it forgot what no longer runs, after an idle
        period that began when `told` words of orders had come."""
        if self._state.holds_nothing():
            return True
        # Deliveries that waited for a slot and stopped asking (their endpoint was deleted or
        # disabled) kept the run open for good; versioned, as the run now ends instead.
        if not workflow.patched(FORGETS_WHEN_IDLE):
            return False
        self._state.forget_stale(workflow.now())
        # A queued delivery that runs asks within the idle period (at its recheck, at most
        # FIFO_RECHECK_MAX apart, or its next retry), so one that did not may have ended unseen.
        # Ingest's word of a delivery just started may come without a question: not idle then.
        if self._state.orders and self._words == told and workflow.patched(FORGETS_ENDED_ORDERS):
            await self._forget_ended_orders()
        return self._state.holds_nothing()

    async def _forget_ended_orders(self) -> None:
        """Each queued delivery is told its turn came: one that runs asks again (a head goes on
        as it was), one that does not is forgotten, and the delivery behind it told in turn."""
        queued = self._state.queued()
        for start in range(0, len(queued), TURNS_AT_ONCE):
            batch = queued[start : start + TURNS_AT_ONCE]
            runs = await asyncio.gather(*(self._tell_turn(d) for d in batch))
            for delivery_id, running in zip(batch, runs, strict=True):
                if not running:
                    await self._tell_turns(self._state.forget_queued(delivery_id))

    def _time_to_continue(self) -> bool:
        suggested = workflow.info().is_continue_as_new_suggested()
        return (suggested or self._questions >= self._state.questions_per_run) and workflow.all_handlers_finished()

    @workflow.update
    def ask(self, question: SlotQuestion) -> SlotAnswer:
        self._questions += 1
        tells = self._signals_turns is not False  # asked live, the patch will say yes
        grace = question.request.rate_limit is not None and workflow.patched(KEEPS_SLOT_GRACE)
        return self._state.ask(question.request, workflow.now(), question.held_before, tells, grace)

    @workflow.signal
    def enqueue(self, enqueue: OrderEnqueue) -> None:
        """Ingest tells the order of accepted events before it answers 202."""
        self._words += 1
        for delivery_id in enqueue.delivery_ids:
            # A delivery may have asked, POSTed and ended before this word of it came: queued
            # again, it would head its order for good. Versioned: it changes whose turn is told.
            if self._state.ended(delivery_id) and workflow.patched(LATE_WORD_OF_ENDED_IGNORED):
                continue
            self._state.enqueue(enqueue.order_id, delivery_id)

    @workflow.signal
    async def release(self, release: OrderRelease) -> None:
        turn = self._state.release(release.order_id, release.delivery_id)
        if turn is None:
            return
        if self._signals_turns is None:
            self._signals_turns = workflow.patched(SIGNALS_TURN)
        if self._signals_turns:
            await self._tell_turns([turn])

    @workflow.signal
    async def ordering_off(self) -> None:
        """The endpoint's ordering was switched off: the deliveries waiting in its queues go now,
        not when they would next ask."""
        if workflow.patched(TELLS_UNORDERED):
            await self._tell_turns(self._state.unorder())

    async def _tell_turns(self, delivery_ids: list[str]) -> None:
        # A few signals at a time: each is a pending command until the server delivers it.
        for start in range(0, len(delivery_ids), TURNS_AT_ONCE):
            await asyncio.gather(*(self._tell_turn(d) for d in delivery_ids[start : start + TURNS_AT_ONCE]))

    @staticmethod
    async def _tell_turn(delivery_id: str) -> bool:
        """Whether the delivery's workflow may run: told, or refused but found. (The SDK gives
        every refusal one type; only its message, set by the SDK's core, names the cause.)"""
        try:
            await workflow.get_external_workflow_handle(delivery_id).signal(TURN_CAME)
            return True
        except ApplicationError as refused:
            # Not running: not started yet, or ended; either way it finds its turn when it asks.
            # Another refusal (its signal limit reached) leaves it taken for running.
            workflow.logger.info("Delivery %s was not told its turn came: %s", delivery_id, refused.message)
            return "it was not found" not in refused.message

    @workflow.query
    def summary(self) -> FlowSummary:
        return self._state.summary()

    @workflow.query
    def head(self, order_id: str) -> str | None:
        return self._state.head(order_id)
