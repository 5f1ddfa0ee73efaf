"""Flow control of one endpoint: its rate limit and its per-order FIFO queues.

Pure rules, kept by `EndpointFlowWorkflow` (one per endpoint, so every worker
shares one schedule) and unit-tested here. Deliveries ask for a slot before
each POST; the answer is "go at this instant" or "ask again at that one".
Throttles asked for by receivers (429, 502, 503, 504) live in the endpoint
registry instead, where every attempt already looks.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_PER_SECOND = 1000.0
# The slowest rate the API accepts: one POST a day. Slower ones put a schedule's instants past
# what a datetime holds; one stored before this bound is scheduled at this rate.
MIN_PER_SECOND = 1 / 86400
# A slot this close is waited for inside the activity; a later one is asked for again
# nearer the time, so a rate edited meanwhile applies (and no worker sleeps for long).
# Long enough that a question asked again late still comes before its turn: a retry's way
# back through the server took up to 1.4 s in a burst of 50 endpoints' questions, and its
# slot, given when the question came, waits for the asker's lead. (2 s before the grace: a
# run from then keeps it.)
SHORT_WAIT = timedelta(seconds=4)
SHORT_WAIT_BEFORE_GRACE = timedelta(seconds=2)
# A POST starts within its slot's grace or not at all (it asks for another slot), and each
# window is kept that much longer than the limit's: so a start anywhere in its grace leaves no
# one-second window with more than the limit. A POST began when its worker got to it: late
# ones, after an on-time one, put up to twice the limit in one second (CI saw 4 at 2/s). The
# grace is a share of the window, so it costs every rate the same (window / (window + grace):
# 95.2 %), up to a cap that leaves the slot's read of the endpoint time to be fresh
# (activities.flow_control.take_slot): 50 ms at whole rates from 1/s, 250 ms at 0.2/s, where a
# worker's many endpoints created together share their slots' instants.
GRACE_SHARE = 0.05
MAX_START_GRACE = timedelta(milliseconds=250)
# A delivery told to wait asks again this long before its turn at the latest: a little under
# SHORT_WAIT, so its question, however late, comes when its slot may be given.
ASK_AGAIN_BEFORE = SHORT_WAIT - timedelta(milliseconds=200)
ASK_AGAIN_AFTER = timedelta(milliseconds=500)  # and no sooner than this after its last question
# The furthest a delivery may ask its slot to be put off (`SlotRequest.lead`): well
# within SHORT_WAIT, so an idle endpoint's slot is always one to wait for, never "ask again";
# and past the answers' way back in a burst (up to 1.1 s measured, with a read of 0.2 s).
MAX_LEAD = SHORT_WAIT / 2
# How often a delivery queued behind another of its order asks again, at most, when nothing
# tells it that its turn came (an activity scheduled before the turn was signalled).
FIFO_POLL_FIRST = timedelta(milliseconds=250)
FIFO_POLL_MAX = timedelta(seconds=30)
# A delivery whose workflow is woken when its turn comes asks again only in case the
# delivery ahead ended without a word (terminated, say): each question costs its history
# about a dozen events, and the one ahead may retry for many hours, so seldom, and less the
# longer it waits (at the cap, ~22 events an hour: a day's wait stays far below 10,000).
FIFO_RECHECK_FIRST = timedelta(seconds=10)
FIFO_RECHECK_MAX = timedelta(minutes=30)
_MAX_DOUBLINGS = 8  # past both caps: 250 ms x 2**8 > 30 s, 10 s x 2**8 > 30 min
# The signal the flow workflow sends a delivery's workflow when the delivery ahead of it in
# its order ended (DeliveryWorkflow's handler takes this name).
TURN_CAME = "turn_came"
# A waiting delivery that has not asked again this long after it was due to is forgotten
# (it ended, or was lost with its worker and will ask anew).
FORGET_AFTER = timedelta(seconds=30)
# Deliveries a schedule remembers as ended: far more than end while one event's word of its
# order is on its way from ingest (a second at most).
RECENTLY_RELEASED = 256


class Ordering(StrEnum):
    NONE = "none"
    FIFO = "fifo"


class RateLimit(BaseModel):
    """At most `per_second` POSTs start in any one-second window; the first ceil(per_second) of
    a quiet endpoint may go at once, then one every `interval` (1/per_second s and its share
    of a start's grace)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: Annotated[float, Field(gt=0, le=MAX_PER_SECOND, allow_inf_nan=False, strict=True)]

    @property
    def burst(self) -> int:
        return math.ceil(self.per_second)

    @property
    def window(self) -> timedelta:
        """The span `burst` POSTs must fit in: one second, or longer for a fractional rate."""
        return timedelta(seconds=self.burst / self._scheduled_rate)

    @property
    def start_grace(self) -> timedelta:
        """How late after its slot a POST may still begin."""
        return min(self.window * GRACE_SHARE, MAX_START_GRACE)

    def kept_window(self, grace: timedelta) -> timedelta:
        """The span the schedule keeps `burst` slots in: the window and a start's grace."""
        return self.window + grace

    def interval(self, grace: timedelta) -> timedelta:
        """The spacing of slots at the full rate."""
        return self.kept_window(grace) / self.burst

    @property
    def interval_before_grace(self) -> timedelta:
        """The spacing a schedule run from before the grace gives, to the microsecond."""
        return timedelta(seconds=1 / self._scheduled_rate)

    @property
    def _scheduled_rate(self) -> float:
        return max(self.per_second, MIN_PER_SECOND)


def _at_least_one_a_day(per_second: float) -> float:
    if per_second < MIN_PER_SECOND:
        raise ValueError("must be at least one POST a day (1/86400)")
    return per_second


class RateLimitRequest(RateLimit):
    """A rate limit as the API accepts it today (see EndpointRequest): at least one POST a day."""

    per_second: Annotated[
        float, Field(gt=0, le=MAX_PER_SECOND, allow_inf_nan=False, strict=True), AfterValidator(_at_least_one_a_day)
    ]


class SlotRequest(BaseModel):
    """A delivery asks for the right to POST now."""

    delivery_id: str
    rate_limit: RateLimit | None = None  # the endpoint's, as the asking attempt read it
    order_id: str | None = None  # set when the delivery is ordered (FIFO)
    turn_signalled: bool = False  # the asker's workflow is told when its turn comes (TURN_CAME)
    # The time the asker needs between the answer and its POST: the answer must reach it, and it
    # reads the endpoint again. A slot given sooner would be begun late (up to MAX_LEAD is honoured).
    lead: timedelta = timedelta(0)


class SlotAnswer(BaseModel):
    go_at: datetime | None = None  # POST at this instant (a slot is reserved for it)
    start_by: datetime | None = None  # and not after this one (a rate-limit slot's grace)
    decided_at: datetime | None = None  # the schedule's clock when it answered: the asker times the way back
    ask_again_at: datetime | None = None  # or ask again then
    behind: str | None = None  # the delivery of the same order it waits for
    turn_told: bool = False  # the schedule will signal its workflow when its turn comes


class WaitingDelivery(BaseModel):
    last_asked: datetime
    due: datetime  # when it was told to ask again


class FlowState(BaseModel):
    """An endpoint's schedule: the recent slots handed out, who waits for one, and each order's queue."""

    account: str
    endpoint_id: str
    # Questions one run answers before it continues as new (sooner if Temporal suggests it).
    questions_per_run: int = 2000
    # With no question and nothing waiting for this long, the schedule has nothing to remember
    # (every rate's window is a day at most) and its workflow ends; the next question starts one.
    idle_close: timedelta = timedelta(days=2)
    forget_after: timedelta = FORGET_AFTER
    recent_slots: list[datetime] = []  # oldest first, at most MAX_PER_SECOND of them
    # Each recent slot's grace, aligned with the newest of recent_slots (a slot given without
    # one, before the grace, has none here: 0). A rate edited since kept its own slots' grace.
    recent_graces: list[timedelta] = []
    waiting: dict[str, WaitingDelivery] = {}  # in the order they first asked
    orders: dict[str, list[str]] = {}  # order id -> its deliveries, the first one POSTing
    released: list[str] = []  # the last RECENTLY_RELEASED deliveries that ended, oldest first

    # -- FIFO ------------------------------------------------------------------

    def enqueue(self, order_id: str, delivery_id: str) -> None:
        queue = self.orders.setdefault(order_id, [])
        if delivery_id not in queue:
            queue.append(delivery_id)

    def release(self, order_id: str, delivery_id: str) -> str | None:
        """The delivery ended: the next of its order may go. Returns that next one when the
        released delivery headed the order (its turn came), else None."""
        self.released = [*self.released, delivery_id][-RECENTLY_RELEASED:]
        queue = self.orders.get(order_id)
        if not queue or delivery_id not in queue:
            return None
        headed = queue[0] == delivery_id
        queue.remove(delivery_id)
        if not queue:
            del self.orders[order_id]
            return None
        return queue[0] if headed else None

    def ended(self, delivery_id: str) -> bool:
        """Whether the delivery was released lately: ingest's word of its order, which can come
        after its first attempt asked, POSTed and ended, must not queue it again."""
        return delivery_id in self.released

    def unorder(self) -> list[str]:
        """The endpoint's ordering was switched off: no delivery waits for another now. Returns
        those that were waiting, to be told their turn came."""
        waiting = [delivery_id for queue in self.orders.values() for delivery_id in queue[1:]]
        self.orders = {}
        return waiting

    def forget_queued(self, delivery_id: str) -> list[str]:
        """Forget a queued delivery that no longer runs: it ended without word (ingest's word of
        it came as its endpoint was deleted or its ordering switched off). Returns the deliveries
        whose turn came: those it headed an order for."""
        turns = []
        for order_id, queue in list(self.orders.items()):
            if delivery_id not in queue:
                continue
            headed = queue[0] == delivery_id
            queue.remove(delivery_id)
            if not queue:
                del self.orders[order_id]
            elif headed:
                turns.append(queue[0])
        return turns

    def queued(self) -> list[str]:
        """Every delivery queued in an order, heads first within each."""
        return [delivery_id for queue in self.orders.values() for delivery_id in queue]

    def head(self, order_id: str) -> str | None:
        queue = self.orders.get(order_id)
        return queue[0] if queue else None

    # -- slots -----------------------------------------------------------------

    def ask(
        self,
        request: SlotRequest,
        now: datetime,
        held_before: int = 0,
        tells_turns: bool = False,
        keeps_grace: bool = True,
    ) -> SlotAnswer:
        """Whether the delivery may POST, and when.

        `held_before` is how often this delivery was told to wait already: a
        delivery queued behind another of its order asks less often the longer it waits,
        and seldom when its turn will be told (`tells_turns`: the schedule signals turns).
        `keeps_grace`: rate-limit slots come with a start's grace, kept free in every window
        (a schedule that gave slots without it goes on so until it continues as new).
        """
        if request.order_id is not None:
            self.enqueue(request.order_id, request.delivery_id)
            head = self.head(request.order_id)
            if head != request.delivery_id:
                told = request.turn_signalled and tells_turns
                first, cap = (FIFO_RECHECK_FIRST, FIFO_RECHECK_MAX) if told else (FIFO_POLL_FIRST, FIFO_POLL_MAX)
                # Doubling stops at the cap: an exponent left to grow would overflow timedelta.
                poll = min(first * 2 ** min(held_before, _MAX_DOUBLINGS), cap)
                return SlotAnswer(ask_again_at=now + poll, behind=head, turn_told=told)
        if request.rate_limit is None:
            self.waiting.pop(request.delivery_id, None)
            return SlotAnswer(go_at=now)
        limit = request.rate_limit
        return self._slot(request, limit, now, limit.start_grace if keeps_grace else None)

    def _slot(self, request: SlotRequest, limit: RateLimit, now: datetime, grace: timedelta | None) -> SlotAnswer:
        """A slot when one is free soon; otherwise a time to ask again, estimated from the
        deliveries already waiting. Whoever asks when a slot is near takes it: a waiting
        delivery that was lost with its worker holds no one up."""
        delivery_id = request.delivery_id
        self.forget_stale(now)
        short_wait = SHORT_WAIT_BEFORE_GRACE if grace is None else SHORT_WAIT
        earliest = self._next_free(limit, now + min(max(request.lead, timedelta(0)), short_wait / 2), grace)
        if earliest - now <= short_wait:
            self.waiting.pop(delivery_id, None)
            self.recent_slots = [*self.recent_slots, earliest][-int(MAX_PER_SECOND) :]
            if grace is None:
                return SlotAnswer(go_at=earliest)
            self.recent_graces = [*self.recent_graces, grace][-int(MAX_PER_SECOND) :]
            return SlotAnswer(go_at=earliest, start_by=earliest + grace, decided_at=now)
        ahead = list(self.waiting).index(delivery_id) if delivery_id in self.waiting else len(self.waiting)
        if grace is None:  # a run from before the grace answers as it did, to the microsecond
            turn = earliest + timedelta(seconds=ahead / limit.per_second)
        else:
            turn = earliest + ahead * limit.interval(grace)
        # Ask again halfway to the turn, so an edited rate applies within half the wait; near the
        # turn, as soon as its slot may be given, which leaves the time a question takes to come
        # (the run held back starts again, reads the endpoint, asks) and the asker's lead.
        wait = turn - now
        if grace is None:  # a run from before the grace answers as it did
            again = now + max(wait / 2, short_wait / 2)
        else:
            again = now + max(min(wait / 2, wait - ASK_AGAIN_BEFORE), ASK_AGAIN_AFTER)
        self.waiting[delivery_id] = WaitingDelivery(last_asked=now, due=again)
        return SlotAnswer(ask_again_at=again)

    def _next_free(self, limit: RateLimit, ready: datetime, grace: timedelta | None) -> datetime:
        """The first instant from `ready` on that a slot leaves no window with more than `burst`
        starts, however late in its grace each slot before it began. A quiet endpoint takes a
        burst at once; behind a full window, slots come one every `interval`, not in bursts at
        each window's edge."""
        recent = self.recent_slots[-limit.burst :]
        if len(recent) < limit.burst:
            return max([ready, *recent])
        if grace is None:  # a run from before the grace answers as it did, to the microsecond
            window_full_until, spacing = recent[0] + limit.window, limit.interval_before_grace
        else:
            window_full_until = self._latest_start(len(self.recent_slots) - limit.burst) + limit.window
            spacing = limit.interval(grace)
        if window_full_until <= ready:
            return max(ready, recent[-1])
        return max(window_full_until, recent[-1] + spacing)

    def _latest_start(self, index: int) -> datetime:
        """The latest a POST may begin in the slot at `index` of recent_slots or in any before it.
        An earlier slot, at most MAX_START_GRACE sooner, may have had a longer grace (the rate
        was edited since)."""
        unmatched = len(self.recent_slots) - len(self.recent_graces)  # slots given without a grace
        latest = self.recent_slots[index]
        for i in range(index, -1, -1):
            slot = self.recent_slots[i]
            if slot + MAX_START_GRACE <= latest:
                break
            latest = max(latest, slot + (self.recent_graces[i - unmatched] if i >= unmatched else timedelta(0)))
        return latest

    def forget_stale(self, now: datetime) -> None:
        """Forget deliveries that stopped asking for a slot: they ended (deleted, disabled,
        terminated) or were lost with their worker, and will ask anew."""
        stale = [d for d, w in self.waiting.items() if now - w.due > self.forget_after]
        for delivery_id in stale:
            del self.waiting[delivery_id]

    def holds_nothing(self) -> bool:
        """No delivery waits for a slot or in an order's queue."""
        return not self.waiting and not self.orders

    def summary(self) -> FlowSummary:
        return FlowSummary(
            waiting_for_rate=len(self.waiting),
            queued_in_order=sum(len(q) for q in self.orders.values()),
            orders=len(self.orders),
        )


class FlowSummary(BaseModel):
    """What an operator or the dashboard sees of an endpoint's schedule."""

    waiting_for_rate: int
    queued_in_order: int
    orders: int
