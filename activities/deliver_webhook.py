"""`deliver_webhook`: a delivery's attempt, within its endpoint's flow control, health and retries."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.flow_control import (
    FlowSchedules,
    HeldBack,
    Latencies,
    NeedsSchedule,
    SlotMissed,
    is_ordered,
    log_held,
    take_slot,
    wait_for_turn,
)
from activities.http_exchange import WebhookPoster
from activities.post_attempt import AttemptPoster
from activities.progress_heartbeats import ProgressHeartbeats
from domain.activity_contract import (
    ATTEMPT_INTERRUPTED,
    ATTEMPT_TIMEOUT_SECONDS,
    DELIVER_WEBHOOK,
    DELIVERY_FAILED,
    ENDPOINT_DELETED,
    ENDPOINT_DISABLED,
    LOST_RUNS_ALLOWED,
    RETRIES_STOPPED_BY_DISABLE,
    RUNS_LOST,
    AttemptInput,
    AttemptProgress,
)
from domain.endpoints import DeliveryOutcome, Endpoint, HealthPolicy
from domain.notices import DeliveryFailedNotice, failed_delivery_notice
from domain.records import AttemptRecord
from domain.retry import GONE, THROTTLE_STATUSES, Backoff
from infra.secrets import SecretBox, UnopenableSecret

# Time a run keeps beyond its POST's own timeout, to record the POST before Temporal ends the run.
POST_MARGIN_SECONDS = 5.0
OUT_OF_TIME = "the run's time went on the endpoint's registry and schedule; the POST goes in the next run"


class EndpointSource(Protocol):
    """An account's endpoints as the activity needs them: read at send time, told of outcomes."""

    async def for_delivery(self, endpoint_id: str, seen_version: int | None = None) -> Endpoint | None: ...

    async def record_outcome(self, outcome: DeliveryOutcome) -> None: ...

    async def throttle(self, endpoint_id: str, until: datetime, url: str) -> None: ...

    async def posts_failing(self, endpoint_id: str, at: datetime, url: str) -> None: ...

    async def gone(self, endpoint_id: str, delivery_id: str, at: datetime, url: str) -> None: ...


# The endpoints of an account, by account name.
EndpointSources = Callable[[str], EndpointSource]


class NoticeSink(Protocol):
    """Where an operational event goes: the account's other endpoints that subscribe (services.notices)."""

    async def raise_notice(self, notice: DeliveryFailedNotice) -> None: ...


NoticeSinks = Callable[[str], NoticeSink]


def _is_gone(record: AttemptRecord) -> bool:
    return record.response is not None and record.response.status_code == GONE


def _is_last(record: AttemptRecord, attempt: AttemptInput, final_type: str | None) -> bool:
    """Whether a failed attempt ends the delivery: its attempts are spent, no retry could succeed
    (`final_type` names such a failure: a forbidden destination, an invalid URL), or the
    receiver said it wants no more (410 Gone)."""
    return final_type is not None or _is_gone(record) or record.number >= attempt.max_attempts


def _reported(endpoint: Endpoint, outcome: DeliveryOutcome) -> bool:
    """Whether the registry is told of a delivery's end: when it can change the endpoint's health.
    A failure while the endpoint is disabled cannot (re-enabling starts a fresh count)."""
    return endpoint.health.changed_by(outcome) and (outcome.succeeded or not endpoint.disabled)


def _stop(message: str, kind: str, last: AttemptRecord | None = None) -> ApplicationError:
    """A delivery that ends without a (further) POST: nothing to retry."""
    details = [last.model_dump(mode="json")] if last else []
    return ApplicationError(message, *details, type=kind, non_retryable=True, category=ApplicationErrorCategory.BENIGN)


class DeliveryActivities:
    """Holds what every attempt shares: the worker's HTTP clients, its views of Temporal, and the
    key that opens endpoint credentials (sealed in the registry) at send time."""

    def __init__(
        self,
        poster: WebhookPoster,
        endpoints: EndpointSources,
        schedules: FlowSchedules,
        notices: NoticeSinks,
        backoff: Backoff,
        http_timeout: float,
        health: HealthPolicy,
        secrets: SecretBox,
    ) -> None:
        self._attempts = AttemptPoster(poster, secrets, http_timeout)
        self._endpoints = endpoints
        self._schedules = schedules
        self._notices = notices
        self._backoff = backoff
        self._http_timeout = http_timeout
        self._health = health
        self._latencies = Latencies()

    @activity.defn(name=DELIVER_WEBHOOK)
    async def deliver_webhook(self, attempt: AttemptInput) -> AttemptRecord:
        """POST the body; return the attempt on success, raise with it on failure.

        The attempts made so far travel in the heartbeat details, so an activity run
        lost with its worker is run again without spending the delivery's retries,
        and an attempt already recorded is not POSTed again. A run the endpoint's
        flow control holds back ends without a POST and is retried when it may go.

        A delivery's first attempt runs this as a local activity, inside the workflow's
        task (no heartbeats, no retry: any failure carries what it did to this activity,
        which the workflow then schedules for the retries).
        """
        # The POST must end within this run's time in Temporal, or the next run, not knowing it
        # was made, would make it again: a run that spent its time waiting does not begin it.
        post_by = time.monotonic() + ATTEMPT_TIMEOUT_SECONDS - self._http_timeout - POST_MARGIN_SECONDS
        # Runs before this one: this activity's, and those of the first-attempt activity it resumes.
        run = activity.info().attempt + attempt.prior_runs
        details = activity.info().heartbeat_details
        progress = AttemptProgress.from_details(details) if details else attempt.resume or AttemptProgress()
        heartbeats = ProgressHeartbeats(progress)
        retry_wait: float | None = None  # once this run's POST failed without ending the delivery
        try:
            if progress.last is not None and (progress.last.succeeded or _is_last(progress.last, attempt, None)):
                return await self._ended_before(attempt, progress, progress.last)
            if progress.lost_runs(run) > LOST_RUNS_ALLOWED:
                # One that made every attempt here may head its order without a run having said
                # so (its progress is ordered once a run held or POSTed): released all the same.
                await self._release(attempt, progress.ordered or attempt.turn_signalled)
                lost = progress.lost_runs(run)
                raise _stop(f"Delivery attempts were lost with their workers {lost} times", RUNS_LOST, progress.last)
            async with heartbeats:
                registry = self._endpoints(attempt.account)
                # The activity's first run may read the registry as ingest saw it; a retry reads it now.
                seen = attempt.registry_version if run == 1 else None
                endpoint = await self._endpoint_to_post(registry, attempt, progress, seen)
                ordered = is_ordered(endpoint, attempt)
                try:
                    schedules, local = self._schedules(attempt.account), activity.info().is_local
                    start_by = None
                    slot = await wait_for_turn(
                        schedules, endpoint, attempt, progress, may_ask=not local, latencies=self._latencies
                    )
                    if slot is not None:
                        # Time passed asking for its slot: a change made meanwhile (a new URL, a delete) holds.
                        turn = progress.model_copy(update={"ordered": ordered})
                        read = partial(self._endpoint_to_post, registry, attempt, turn, None)
                        endpoint, start_by = await take_slot(
                            slot, read, self._latencies, missed_before=progress.slots_missed
                        )
                    if time.monotonic() > post_by:
                        raise HeldBack(datetime.now(UTC) + timedelta(seconds=1), OUT_OF_TIME)
                    record, retry_after, final_type = await self._attempts.post(
                        endpoint, attempt, progress.attempts + 1, progress.last, start_by
                    )
                except NeedsSchedule:
                    raise NeedsSchedule.failure(progress.model_copy(update={"ordered": ordered})) from None
                except HeldBack as held:
                    log_held(attempt, held)
                    missed = progress.slots_missed + 1 if isinstance(held, SlotMissed) else progress.slots_missed
                    held_progress = progress.model_copy(
                        update={"held": progress.held + 1, "ordered": ordered, "slots_missed": missed}
                    )
                    heartbeats.record(held_progress)
                    raise held.failure(datetime.now(UTC), held_progress, run) from None
                heartbeats.record(
                    progress.model_copy(
                        update={"attempts": record.number, "last": record, "ordered": ordered, "slots_missed": 0}
                    )
                )
                delay = self._backoff.delay(record.number, retry_after)
                ends = record.succeeded or _is_last(record, attempt, final_type)
                retry_wait = None if ends else delay
                if record.response is not None and record.response.status_code in THROTTLE_STATUSES:
                    await self._throttle(registry, endpoint, record.started_at + timedelta(seconds=delay), heartbeats)
                if _is_gone(record):
                    heartbeats.send()  # the POST is recorded before a wait on the registry
                    await registry.gone(endpoint.id, attempt.delivery_id, record.started_at, record.request.url)
                else:
                    await self._posts_failing(registry, endpoint, record, heartbeats)
                if ends:
                    await self._ended(registry, endpoint, attempt, record, heartbeats)
                    if ordered:
                        heartbeats.send()  # the POST is recorded before a wait on the flow schedule
                    await self._release(attempt, ordered)
                    await self._notify_failure(attempt, record)
        except (ApplicationError, asyncio.CancelledError):
            raise
        except Exception as exc:
            # Temporal, the registry or a flow schedule did not answer: not the endpoint's doing.
            # Retried, with what this run did so far (a POST made is not made again).
            # Such a run is known, not lost: it counts with the held runs, beyond the lost-run budget.
            # The next run of this activity reads that count from the heartbeat, not from this failure.
            interrupted = heartbeats.progress.model_copy(update={"held": heartbeats.progress.held + 1})
            heartbeats.record(interrupted)
            # Nor is a credential this worker's keys cannot open: retried (the operator puts the
            # old key back, and the delivery goes on), but said, and logged as the worker's error.
            unopenable = isinstance(exc, UnopenableSecret)
            raise ApplicationError(
                f"Attempt interrupted: {exc if unopenable else type(exc).__name__}",
                interrupted.model_dump(mode="json"),
                type=ATTEMPT_INTERRUPTED,
                # After a failed POST, the next one keeps its backoff and the receiver's Retry-After
                # (a pause that could not be recorded is waited out all the same).
                next_retry_delay=timedelta(seconds=retry_wait) if retry_wait is not None else None,
                category=ApplicationErrorCategory.UNSPECIFIED if unopenable else ApplicationErrorCategory.BENIGN,
            ) from exc
        return self._conclude(record, attempt, retry_after, final_type, heartbeats.progress)

    async def _endpoint_to_post(
        self, registry: EndpointSource, attempt: AttemptInput, progress: AttemptProgress, seen: int | None
    ) -> Endpoint:
        """The endpoint to POST to, read from the registry (a snapshot at least `seen` new may
        do); the delivery stops if it was deleted, or is skipped while it is disabled."""
        endpoint = await registry.for_delivery(attempt.endpoint_id, seen)
        if endpoint is None:
            await self._release(attempt, progress.ordered)
            message = f"Endpoint {attempt.endpoint_id} was deleted: delivery stopped"
            await self._notify_failure(attempt, progress.last, stopped=message)
            raise _stop(message, ENDPOINT_DELETED, progress.last)
        if endpoint.disabled and attempt.skip_if_disabled:
            await self._release(attempt, progress.ordered or is_ordered(endpoint, attempt))
            if progress.last is not None:
                message = f"Endpoint {attempt.endpoint_id} was disabled: no more retries"
                await self._notify_failure(attempt, progress.last, stopped=message)
                raise _stop(message, RETRIES_STOPPED_BY_DISABLE, progress.last)
            message = f"Endpoint {attempt.endpoint_id} is disabled: delivery skipped"
            raise _stop(message, ENDPOINT_DISABLED)
        return endpoint

    async def _ended_before(
        self, attempt: AttemptInput, progress: AttemptProgress, last: AttemptRecord
    ) -> AttemptRecord:
        """The delivery's last POST ended it in an earlier run, which was lost or interrupted before
        it finished: what that run had left to do, done again (each report to the registry counts
        once however often it comes), then the same end."""
        registry = self._endpoints(attempt.account)
        endpoint = await registry.for_delivery(attempt.endpoint_id)
        if endpoint is not None:
            heartbeats = ProgressHeartbeats(progress)
            if _is_gone(last):
                await registry.gone(endpoint.id, attempt.delivery_id, last.started_at, last.request.url)
            await self._ended(registry, endpoint, attempt, last, heartbeats)
        await self._release(attempt, progress.ordered)
        await self._notify_failure(attempt, last)
        return self._conclude(last, attempt, retry_after=None, final_type=None)

    async def _throttle(
        self, registry: EndpointSource, endpoint: Endpoint, until: datetime, heartbeats: ProgressHeartbeats
    ) -> None:
        """Pause every delivery to the endpoint until then; an equal or longer pause is set already."""
        if endpoint.throttled_until is None or endpoint.throttled_until < until:
            heartbeats.send()  # the POST is recorded before a wait on the registry
            await registry.throttle(endpoint.id, until, endpoint.url)

    async def _posts_failing(
        self, registry: EndpointSource, endpoint: Endpoint, record: AttemptRecord, heartbeats: ProgressHeartbeats
    ) -> None:
        """A failed retry marks its endpoint's POSTs failing, so its next deliveries make no local
        first attempt (they would fail, and wait for their retries on a billed timer)."""
        if endpoint.disabled or not endpoint.health.begins_failing_posts(record):
            return
        heartbeats.send()  # the POST is recorded before a wait on the registry
        # Read again: another delivery's failed retry may have marked it while this POST ran.
        now = await registry.for_delivery(endpoint.id)
        if now is not None and not now.disabled and now.health.begins_failing_posts(record):
            await registry.posts_failing(endpoint.id, record.started_at, record.request.url)

    async def _ended(
        self,
        registry: EndpointSource,
        endpoint: Endpoint,
        attempt: AttemptInput,
        record: AttemptRecord,
        heartbeats: ProgressHeartbeats,
    ) -> None:
        """Health counts deliveries, not attempts: report the ends that can change the endpoint's
        health (with the rule off, only a success that ends a run of failed POSTs)."""
        if self._health.failures == 0 and not record.succeeded:
            return
        outcome = DeliveryOutcome(
            endpoint_id=endpoint.id,
            delivery_id=attempt.delivery_id,
            succeeded=record.succeeded,
            at=record.started_at,
            policy=self._health,
            url=record.request.url,
        )
        if not _reported(endpoint, outcome):
            if record.succeeded:
                return
            # The endpoint was read before the POST: a success or a re-enable since may have begun
            # a fresh count, which this failure belongs to. Skipped only if it still changes
            # nothing. (A failed POST's heartbeat has recorded it before this wait.)
            now = await registry.for_delivery(endpoint.id)
            if now is None or not _reported(now, outcome):
                return
        heartbeats.send()  # the POST is recorded before a wait on the registry
        await registry.record_outcome(outcome)

    async def _notify_failure(self, attempt: AttemptInput, last: AttemptRecord | None, stopped: str = "") -> None:
        """A delivery that ended failed raises DELIVERY_FAILED, with the body it sent: after its
        last POST, or `stopped` without one more (its endpoint was deleted, or disabled)."""
        if not attempt.notify_failure or (not stopped and (last is None or last.succeeded)):
            return
        error = stopped or (last.error if last else None)
        assert error is not None
        notice = failed_delivery_notice(
            delivery_id=attempt.delivery_id,
            endpoint_id=attempt.endpoint_id,
            endpoint_url=last.request.url if last else attempt.endpoint_url or "",
            order_id=str(json.loads(attempt.body).get("OrderID", "")),
            error=error,
            retries=last.number - 1 if last else 0,
            body=attempt.body,
            date=int((datetime.now(UTC) if stopped or last is None else last.started_at).timestamp()),
        )
        await self._notices(attempt.account).raise_notice(notice)

    async def _release(self, attempt: AttemptInput, ordered: bool) -> None:
        """The delivery ends: the next one of its order may go."""
        if ordered and attempt.order_id is not None:
            await self._schedules(attempt.account).release(attempt.endpoint_id, attempt.order_id, attempt.delivery_id)

    def _conclude(
        self,
        record: AttemptRecord,
        attempt: AttemptInput,
        retry_after: float | None,
        final_type: str | None,
        progress: AttemptProgress | None = None,
    ) -> AttemptRecord:
        """The run's end: the record of a success, or a failure carrying it (and the delivery's
        progress, which the retries' activity goes on from)."""
        if record.succeeded:
            return record
        assert record.error is not None
        raise ApplicationError(
            record.error,
            record.model_dump(mode="json"),
            *([progress.model_dump(mode="json")] if progress else []),
            type=final_type or DELIVERY_FAILED,
            non_retryable=_is_last(record, attempt, final_type),
            next_retry_delay=timedelta(seconds=self._backoff.delay(record.number, retry_after)),
            # An endpoint answering badly is business as usual, not a worker error.
            category=ApplicationErrorCategory.BENIGN,
        )
