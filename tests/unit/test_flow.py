"""The endpoint schedule's rules: rate-limit slots and FIFO queues (domain.flow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.endpoints import EndpointPatchRequest
from domain.flow import MAX_LEAD, MAX_START_GRACE, MIN_PER_SECOND, SHORT_WAIT, FlowState, RateLimit, SlotRequest
from domain.problems import field_errors

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def grace(per_second: float) -> timedelta:
    return RateLimit(per_second=per_second).start_grace


def state() -> FlowState:
    return FlowState(account="default", endpoint_id="ep_1")


def ask(flow: FlowState, delivery: str, at: datetime, per_second: float | None = None, order: str | None = None):
    limit = RateLimit(per_second=per_second) if per_second else None
    return flow.ask(SlotRequest(delivery_id=delivery, rate_limit=limit, order_id=order), at)


@pytest.mark.parametrize("per_second", [0, -1, 1000.5, float("inf"), float("nan")])
def test_a_rate_outside_0_to_1000_is_refused(per_second: float) -> None:
    with pytest.raises(ValidationError):
        RateLimit(per_second=per_second)


@pytest.mark.parametrize("per_second", [1e-300, 1e-12, MIN_PER_SECOND / 2])
def test_the_api_refuses_a_rate_slower_than_one_post_a_day(per_second: float) -> None:
    with pytest.raises(ValidationError) as refused:
        EndpointPatchRequest.model_validate({"rate_limit": {"per_second": per_second}})

    [problem] = field_errors(refused.value.errors())
    assert problem == {"field": "rate_limit.per_second", "message": "must be at least one POST a day (1/86400)"}
    assert EndpointPatchRequest.model_validate({"rate_limit": {"per_second": MIN_PER_SECOND}}).rate_limit


@pytest.mark.parametrize("per_second", [1e-300, 1e-12])
def test_a_slower_rate_stored_before_that_bound_is_scheduled_at_one_a_day(per_second: float) -> None:
    """Such a rate overflowed the schedule's arithmetic, failing its workflow's every task."""
    flow = state()
    first = ask(flow, "d0", T0, per_second=per_second)
    second = ask(flow, "d1", T0, per_second=per_second)

    assert first.go_at == T0
    assert second.ask_again_at is not None and second.ask_again_at <= T0 + timedelta(days=1)


def test_the_first_ceil_x_go_at_once_then_one_every_1_over_x_seconds_and_its_share_of_the_grace() -> None:
    flow = state()
    answers = [ask(flow, f"d{n}", T0, per_second=2) for n in range(4)]

    assert [a.go_at for a in answers] == [T0 + timedelta(seconds=s) for s in (0, 0, 1.05, 1.575)]
    assert all(a.go_at and a.start_by == a.go_at + grace(2) for a in answers)


def test_a_quiet_endpoint_gets_its_burst_again() -> None:
    flow = state()
    for n in range(5):
        ask(flow, f"d{n}", T0, per_second=2)
    later = T0 + timedelta(seconds=10)
    slots = [ask(flow, f"e{n}", later, per_second=2).go_at for n in range(3)]

    assert slots == [later, later, later + timedelta(seconds=1) + grace(2)]


def test_a_fractional_rate_spaces_posts_out() -> None:
    flow = state()
    first = ask(flow, "d0", T0, per_second=0.25)
    second, third = (ask(flow, f"d{n}", T0 + timedelta(seconds=1), per_second=0.25) for n in (1, 2))

    assert (first.go_at, second.go_at) == (T0, T0 + timedelta(seconds=4) + grace(0.25))
    assert third.go_at is None and third.ask_again_at is not None  # seven seconds away: ask again later


def test_a_slot_further_than_a_short_wait_is_not_reserved() -> None:
    flow = state()
    answers = [ask(flow, f"d{n}", T0, per_second=1) for n in range(6)]

    reserved = [a.go_at for a in answers if a.go_at]
    assert reserved == [T0 + n * (timedelta(seconds=1) + grace(1)) for n in range(4)]  # within SHORT_WAIT
    assert all(a.ask_again_at and a.ask_again_at > T0 for a in answers[4:])
    assert len(flow.waiting) == 2


@settings(max_examples=200, deadline=None)
@given(
    per_second=st.floats(min_value=0.1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=120),
    lateness=st.lists(st.floats(min_value=0, max_value=1), min_size=120, max_size=120),
)
def test_no_window_ever_holds_more_than_the_limit_however_late_in_their_grace_posts_begin(
    per_second: float, gaps: list[float], lateness: list[float]
) -> None:
    """Whatever the asking pattern, and wherever in its grace each POST begins (when its worker
    gets to it; later, it is not made), no window holds more than ceil(x) starts: the outside
    probe saw 3 in a second at 2/s, and CI 4, before the grace was kept."""
    flow = state()
    limit = RateLimit(per_second=per_second)
    now, starts = T0, []
    for n, gap in enumerate(gaps):
        now += timedelta(seconds=gap)
        answer = ask(flow, f"d{n}", now, per_second=per_second)
        if answer.go_at:
            assert answer.start_by and now <= answer.go_at <= now + SHORT_WAIT
            starts.append(answer.go_at + (answer.start_by - answer.go_at) * lateness[n])
    window = limit.window
    assert all(sum(1 for u in starts if t <= u < t + window) <= limit.burst for t in starts)


RATES = [0.2, 0.3, 0.5, 1, 1.5, 2, 3, 10]


@settings(max_examples=300, deadline=None)
@given(
    questions=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=0.6),  # seconds since the question before
            st.sampled_from(RATES),  # the rate as the asker read it: edited between questions
            st.floats(min_value=0, max_value=2.5),  # the asker's lead, in seconds
            st.floats(min_value=0, max_value=1),  # where in its grace the POST begins
        ),
        min_size=1,
        max_size=80,
    )
)
def test_a_slot_given_after_a_rate_edit_leaves_no_window_over_the_new_limit(
    questions: list[tuple[float, float, float, float]],
) -> None:
    """Each slot keeps its own grace. Spaced by the new rate's shorter grace, a slot came too soon
    after the old rate's last one begun late in its longer grace: from 0.5/s to 1/s, two POSTs
    began 0.95 s apart. Whatever the edits and leads, the window that ends at each slot given
    holds no more starts than the limit it was given under allows."""
    flow = state()
    now, slots = T0, []  # (slot, latest start, limit)
    for n, (gap, per_second, lead, lateness) in enumerate(questions):
        now += timedelta(seconds=gap)
        limit = RateLimit(per_second=per_second)
        answer = flow.ask(SlotRequest(delivery_id=f"d{n}", rate_limit=limit, lead=timedelta(seconds=lead)), now)
        if answer.go_at and answer.start_by:
            slots.append((answer.go_at, answer.go_at + (answer.start_by - answer.go_at) * lateness, limit))
    for j, (slot, _, limit) in enumerate(slots):
        in_window = [start for _, start, _ in slots[: j + 1] if start > slot - limit.window]
        assert len(in_window) <= limit.burst


def test_a_schedule_from_before_the_grace_answers_as_it_did_to_the_microsecond() -> None:
    """Its answers are replayed from its history: one that moved (a microsecond of rounding, or
    the rate read otherwise) could change when it decides it is idle, and so its commands."""
    flow = state()
    old = partial(SlotRequest, rate_limit=RateLimit(per_second=1.5))
    slots = [flow.ask(old(delivery_id=f"d{n}"), T0, keeps_grace=False).go_at for n in range(4)]
    assert slots[-1] == T0 + timedelta(seconds=2)  # 1/1.5 s after 4/3 s, rounded as it was

    legacy = partial(SlotRequest, rate_limit=RateLimit(per_second=1e-6))  # stored before the API's floor
    flow = state()
    for n in range(3):
        again = flow.ask(legacy(delivery_id=f"e{n}"), T0, keeps_grace=False).ask_again_at
    # The second one waiting, one POST behind at the rate stored, not the floor's one a day.
    assert again == T0 + (timedelta(seconds=86400) + timedelta(seconds=1e6)) / 2


def test_a_slot_is_put_off_until_the_asker_can_take_it_and_no_further_than_the_lead_allows() -> None:
    flow = state()
    soon = ask_with_lead(flow, "d0", timedelta(milliseconds=300))
    capped = ask_with_lead(flow, "d1", timedelta(hours=1))
    behind = ask_with_lead(flow, "d2", timedelta(0))  # the window is full: its slot is later anyway

    assert (soon.go_at, soon.decided_at) == (T0 + timedelta(milliseconds=300), T0)
    assert capped.go_at == T0 + MAX_LEAD
    assert behind.go_at == T0 + MAX_LEAD + RateLimit(per_second=2).interval(grace(2))


def ask_with_lead(flow: FlowState, delivery: str, lead: timedelta):
    return flow.ask(SlotRequest(delivery_id=delivery, rate_limit=RateLimit(per_second=2), lead=lead), T0)


@pytest.mark.parametrize(
    ("per_second", "ms"), [(1000, 50), (10, 50), (2, 50), (1.5, 66.667), (0.5, 100), (0.2, 250), (1 / 86400, 250)]
)
def test_a_slots_grace_is_a_twentieth_of_its_window_up_to_a_quarter_second(per_second: float, ms: float) -> None:
    """So it costs every rate the same share, 1 - 1/1.05, and a slow endpoint's slots, which
    a worker's many endpoints created together share, get more time to start."""
    assert grace(per_second).total_seconds() * 1000 == pytest.approx(ms, abs=0.001)
    assert grace(per_second) <= MAX_START_GRACE


def test_a_delivery_near_its_turn_asks_again_as_soon_as_its_slot_may_be_given() -> None:
    """Halfway to a turn 5.2 s away, its question came 2.6 s before the turn, and its run's
    start (up to 1.4 s late in a burst), its read and its lead (up to 2 s) could put the slot
    it got past the free one."""
    flow = state()
    ask(flow, "d0", T0, per_second=0.2)  # the burst: one
    ask(flow, "d1", T0 + timedelta(seconds=3.5), per_second=0.2)  # the next slot, 5.25 s on
    turn = T0 + 2 * timedelta(seconds=5.25)
    far = ask(flow, "d2", T0 + timedelta(seconds=2), per_second=0.2)  # 8.5 s from its turn
    near = ask(flow, "d2", turn - timedelta(seconds=5.2), per_second=0.2)

    assert far.ask_again_at == T0 + timedelta(seconds=2) + (turn - T0 - timedelta(seconds=2)) / 2  # halfway
    assert near.ask_again_at == turn - timedelta(seconds=3.8)
    # 1.4 s late, and asking for a slot no sooner than the longest lead, 2 s: still in time.
    slow_asker = SlotRequest(delivery_id="d2", rate_limit=RateLimit(per_second=0.2), lead=MAX_LEAD)
    assert flow.ask(slow_asker, turn - timedelta(seconds=2.4)).go_at == turn


def test_a_schedule_that_gave_slots_without_a_grace_goes_on_without_one() -> None:
    """A run of the schedule from before the grace replays its slots, and keeps giving them, as
    it did (its patch said no): its record of the slots given stays what it gave."""
    flow = state()
    request = partial(SlotRequest, rate_limit=RateLimit(per_second=2))
    answers = [flow.ask(request(delivery_id=f"d{n}"), T0, keeps_grace=False) for n in range(4)]

    assert [a.go_at for a in answers] == [T0 + timedelta(seconds=s) for s in (0, 0, 1, 1.5)]
    assert all(a.start_by is None for a in answers)


def test_an_order_without_a_rate_limit_has_no_grace_to_keep() -> None:
    answer = ask(state(), "a", T0, order="o1")

    assert (answer.go_at, answer.start_by) == (T0, None)


def test_a_faster_rate_applies_to_the_next_question() -> None:
    flow = state()
    for n in range(5):
        ask(flow, f"d{n}", T0, per_second=1)
    slow = ask(flow, "late", T0, per_second=1)  # 5.25 s away
    fast = ask(flow, "late", T0, per_second=100)

    assert slow.go_at is None
    assert fast.go_at is not None and fast.go_at <= T0 + SHORT_WAIT


def test_fifo_lets_only_the_head_of_each_order_go() -> None:
    flow = state()
    flow.enqueue("o1", "a")
    flow.enqueue("o1", "b")

    assert ask(flow, "b", T0, order="o1").behind == "a"
    assert ask(flow, "a", T0, order="o1").go_at == T0
    assert ask(flow, "x", T0, order="o2").go_at == T0  # other orders are not held back
    flow.release("o1", "a")
    assert ask(flow, "b", T0, order="o1").go_at == T0


def test_releasing_the_head_names_the_delivery_whose_turn_came() -> None:
    flow = state()
    for delivery in "abc":
        flow.enqueue("o1", delivery)

    assert flow.release("o1", "b") is None  # not the head: nobody's turn changed
    assert flow.release("o1", "a") == "c"
    assert flow.release("o1", "c") is None  # the order's queue is empty
    assert flow.release("o1", "c") is None and "o1" not in flow.orders


def test_a_delivery_that_asks_before_ingest_enqueued_it_takes_the_next_place() -> None:
    flow = state()
    flow.enqueue("o1", "a")

    assert ask(flow, "b", T0, order="o1").behind == "a"
    flow.enqueue("o1", "b")  # ingest's signal arrives late: no second place
    assert flow.orders["o1"] == ["a", "b"]


def test_forgetting_a_queued_delivery_that_ended_unseen_names_whose_turn_came() -> None:
    flow = state()
    for order, deliveries in (("o1", "abc"), ("o2", "x")):
        for delivery in deliveries:
            flow.enqueue(order, delivery)

    assert flow.queued() == ["a", "b", "c", "x"]
    assert flow.forget_queued("b") == []  # not a head: nobody's turn changed
    assert flow.forget_queued("a") == ["c"]
    assert flow.forget_queued("x") == [] and "o2" not in flow.orders
    assert flow.orders == {"o1": ["c"]}


def test_a_waiter_asks_less_often_the_longer_it_waits() -> None:
    flow = state()
    flow.enqueue("o1", "a")
    waits = [flow.ask(SlotRequest(delivery_id="b", order_id="o1"), T0, held).ask_again_at for held in range(12)]

    delays = [(w - T0).total_seconds() for w in waits if w]
    assert delays == sorted(delays) and delays[0] < 1 and delays[-1] == 30


def test_switching_ordering_off_lets_every_waiting_delivery_go() -> None:
    flow = state()
    for order, deliveries in (("o1", "abc"), ("o2", "xy")):
        for delivery in deliveries:
            flow.enqueue(order, delivery)

    assert flow.unorder() == ["b", "c", "y"]  # the heads are already on their way
    assert ask(flow, "c", T0, order="o1").go_at == T0 and flow.orders == {"o1": ["c"]}


def test_a_waiter_told_of_its_turn_asks_again_seldom() -> None:
    """Its workflow is woken when its turn comes; asking again only covers a turn never told."""
    flow = state()
    flow.enqueue("o1", "a")
    request = SlotRequest(delivery_id="b", order_id="o1", turn_signalled=True)
    answers = [flow.ask(request, T0, held, tells_turns=True) for held in [0, 1, 2, 10_000]]

    assert [(a.ask_again_at - T0).total_seconds() for a in answers if a.ask_again_at] == [10, 20, 40, 1800]
    assert all(a.turn_told for a in answers)


def test_a_schedule_that_does_not_tell_turns_has_its_waiters_ask_as_before() -> None:
    """A schedule's run from before turns were told keeps not telling them (its patch said no):
    its waiters, told so, ask again at doubling intervals up to 30 s, in their activity."""
    flow = state()
    flow.enqueue("o1", "a")
    request = SlotRequest(delivery_id="b", order_id="o1", turn_signalled=True)
    answers = [flow.ask(request, T0, held, tells_turns=False) for held in [0, 10_000]]

    assert [(a.ask_again_at - T0).total_seconds() for a in answers if a.ask_again_at] == [0.25, 30]
    assert not any(a.turn_told for a in answers)


def test_waiters_that_stop_asking_are_forgotten() -> None:
    flow = state()
    for n in range(5):
        ask(flow, f"d{n}", T0, per_second=1)
    ask(flow, "gone", T0, per_second=1)

    ask(flow, "later", T0 + timedelta(minutes=5), per_second=1)
    assert "gone" not in flow.waiting


def test_a_delivery_kept_waiting_for_hours_still_gets_an_answer() -> None:
    """Its count of holds grows without end; the wait it is told stays at the cap."""
    flow = state()
    flow.enqueue("o1", "a")

    answer = flow.ask(SlotRequest(delivery_id="b", order_id="o1"), T0, held_before=10_000)

    assert answer.ask_again_at == T0 + timedelta(seconds=30)
