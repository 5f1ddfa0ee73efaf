"""Re-runs: one finished delivery again, or an endpoint's failed ones since a moment (recovery)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.activity_contract import RecoveryRequest, RecoveryResult
from domain.delivery import DeliveryInput
from domain.ids import recovered_id, recovery_workflow_id, rerun_id
from domain.records import SAMPLE_KINDS, DeliveryKind, DeliveryResult
from services.deliveries import start_delivery
from services.delivery_log import RESULT_CLAUSES, DeliveryLog, LogFilter, delivery_result
from services.endpoints import EndpointRegistry
from services.log_window import quoted, visibility_time
from workflows import search_attributes as sa
from workflows.recovery import RecoveryWorkflow

# How long the API waits for a recovery's count; a longer one goes on in its workflow.
RECOVERY_ANSWER_SECONDS = 30.0


class DeliveryStillPending(Exception):
    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"delivery {delivery_id} is still pending; re-run it once it has finished")


class EndpointDisabledForReruns(Exception):
    """Re-runs of an endpoint's deliveries wait until it is enabled again: they would be skipped."""

    def __init__(self) -> None:
        super().__init__('the endpoint is disabled: enable it (PATCH {"disabled": false}) to re-run its deliveries')


class RecoveryUnfinished(Exception):
    """A recovery that did not end with its count within RECOVERY_ANSWER_SECONDS, or failed."""


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
    is gone), EndpointDisabledForReruns and, for a `new_id` already taken,
    WorkflowAlreadyStartedError.
    """
    rerun = await _rerun_of(log, registry, delivery_id, new_id or rerun_id(delivery_id, uuid.uuid4().hex[:12]), kind)
    await start_delivery(client, task_queue, rerun)
    return rerun


async def _rerun_of(
    log: DeliveryLog, registry: EndpointRegistry, delivery_id: str, new_id: str, kind: DeliveryKind
) -> DeliveryInput:
    execution = await log.describe(delivery_id)
    if execution.status == WorkflowExecutionStatus.RUNNING:
        raise DeliveryStillPending(delivery_id)
    original = await log.delivery_input(delivery_id, execution.run_id)
    endpoint = await registry.get(original.endpoint_id)
    if endpoint.disabled and original.original_kind not in SAMPLE_KINDS:
        raise EndpointDisabledForReruns
    return original.model_copy(
        update={
            "delivery_id": new_id,
            "kind": kind,
            "endpoint_url": endpoint.url,
            "max_attempts": endpoint.retry.max_attempts,
            "rerun_of": delivery_id,
            "rerun_of_kind": original.original_kind,
            "message_id": original.message_id,
            # The original's was the registry as its event found it: the re-run reads it anew,
            # or a snapshot from before an edit (say, enabling the endpoint) could serve it.
            "registry_version": None,
            # Only ingest, in the API, names that shape: a worker starting a recovery's re-runs
            # during a rolling deploy could hand one to an older worker (docs/releasing.md).
            "attempts_in_activity": False,
        }
    )


async def recover_endpoint(
    client: Client, task_queue: str, request: RecoveryRequest, wait_seconds: float = RECOVERY_ANSWER_SECONDS
) -> RecoveryResult:
    """Run a recovery (as a workflow, so it survives restarts) and wait for its count, at most
    `wait_seconds`. Raises RecoveryUnfinished when it fails (its retries are bounded) or takes
    longer; a recovery is idempotent, so asking again later answers its count."""
    handle = await client.start_workflow(
        RecoveryWorkflow.run,
        request,
        id=recovery_workflow_id(request.endpoint_id, uuid.uuid4().hex[:12]),
        task_queue=task_queue,
        static_summary=f"Recover failed deliveries of {request.endpoint_id} since {request.since.isoformat()}",
    )
    try:
        return await asyncio.wait_for(handle.result(), wait_seconds)
    except TimeoutError:
        raise RecoveryUnfinished(
            f"recovery {handle.id} is still running and goes on; ask again later for its count"
        ) from None
    except WorkflowFailureError as err:
        cause: BaseException = err
        while getattr(cause, "cause", None) is not None:  # workflow failure → activity failure → its reason
            cause = cause.cause  # type: ignore[attr-defined]
        raise RecoveryUnfinished(f"recovery {handle.id} failed: {cause}; try again") from None


async def recover_failed(
    client: Client,
    task_queue: str,
    registry: EndpointRegistry,
    request: RecoveryRequest,
    progress: Callable[[int, int], None],
) -> RecoveryResult:
    """Re-run once each event whose delivery to the endpoint failed (or was skipped) since a
    moment and has not gone through since (Svix's recovery resends messages, not attempts).
    "Failed since" is when it ended: a delivery whose retries began before the moment and ran
    out after it failed since then (the moment a 410 or a run of failures disabled the
    endpoint is later than the start of the delivery that caused it).

    An event's deliveries to one endpoint are its first delivery and every re-run of it: the
    newest one speaks for the event. Re-run when it failed, unless it is itself a recovery's
    re-run (each failure gets one second chance: found, not started), or a test's (a test is
    sent once). Idempotent: a recovery's re-run has a fixed id, and once started it is the
    event's newest delivery. `progress` is told how many events were found and re-runs started
    so far (a heartbeat).
    The visibility index lags a moment: a re-run started just before may not be seen yet.
    """
    log = DeliveryLog(client, request.account, web_ui_url="")
    endpoint = LogFilter(endpoint_id=request.endpoint_id).visibility_query(request.account)
    since = f"{endpoint} AND CloseTime >= {quoted(visibility_time(request.since))}"
    # As the log reads them: failed also covers runs terminated, cancelled or timed out.
    unsent = f"({RESULT_CLAUSES[DeliveryResult.FAILED]} OR {RESULT_CLAUSES[DeliveryResult.SKIPPED]})"
    not_tests = f"{sa.KIND.name} != {quoted(DeliveryKind.TEST)}"
    events: set[str] = set()
    async for execution in client.list_workflows(f"{since} AND {unsent} AND {not_tests}"):
        events.add(execution.typed_search_attributes.get(sa.EVENT_ID) or "")
        progress(0, 0)  # a long listing is not a lost worker
    found = started = 0
    listed = sorted(events - {""})
    for batch in (listed[i : i + _EVENTS_A_LISTING] for i in range(0, len(listed), _EVENTS_A_LISTING)):
        for newest in await _newest_deliveries(client, endpoint, batch):
            if newest.typed_search_attributes.get(sa.KIND) == DeliveryKind.RECOVERY:
                found += 1  # recovered already: found, not started again
            elif _unsent(newest):
                try:
                    rerun = await _rerun_of(log, registry, newest.id, recovered_id(newest.id), DeliveryKind.RECOVERY)
                except DeliveryStillPending:
                    continue  # started since it was listed: it speaks for its event now
                except EndpointDisabledForReruns:
                    # Disabled meanwhile (say, by a 410 a re-run got): the rest waits for the next recovery.
                    return RecoveryResult(found=found, started=started)
                if rerun.original_kind == DeliveryKind.TEST:
                    continue
                found += 1
                try:
                    await start_delivery(client, task_queue, rerun)
                    started += 1
                except WorkflowAlreadyStartedError:
                    pass
            progress(found, started)
    return RecoveryResult(found=found, started=started)


# Event ids a listing of their deliveries names at once (its query stays short).
_EVENTS_A_LISTING = 100


async def _newest_deliveries(client: Client, endpoint_query: str, event_ids: Sequence[str]) -> list[WorkflowExecution]:
    """Each event's newest delivery to the endpoint: its first one, or the latest re-run of it."""
    listed = f"{endpoint_query} AND {sa.EVENT_ID.name} IN ({', '.join(quoted(e) for e in event_ids)})"
    newest: dict[str | None, WorkflowExecution] = {}
    async for execution in client.list_workflows(listed):
        event_id = execution.typed_search_attributes.get(sa.EVENT_ID)
        known = newest.get(event_id)
        if known is None or (execution.start_time, execution.id) > (known.start_time, known.id):
            newest[event_id] = execution
    return [newest[e] for e in event_ids if e in newest]


def _unsent(execution: WorkflowExecution) -> bool:
    result = delivery_result(execution.status, execution.typed_search_attributes.get(sa.RESULT))
    return result in (DeliveryResult.FAILED, DeliveryResult.SKIPPED)
