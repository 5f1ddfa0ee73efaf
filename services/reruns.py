"""Re-runs: one finished delivery again, or an endpoint's failed ones since a moment (recovery)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.activity_contract import RecoveryRequest, RecoveryResult
from domain.delivery import DeliveryInput
from domain.ids import recovered_id, recovery_workflow_id, rerun_id
from domain.records import REACH_DISABLED_ENDPOINTS, DeliveryKind, DeliveryResult
from services.deliveries import start_delivery
from services.delivery_log import DeliveryLog, LogFilter
from services.endpoints import EndpointRegistry
from services.log_window import quoted
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
    execution = await log.describe(delivery_id)
    if execution.status == WorkflowExecutionStatus.RUNNING:
        raise DeliveryStillPending(delivery_id)
    original = await log.delivery_input(delivery_id, execution.run_id)
    endpoint = await registry.get(original.endpoint_id)
    if endpoint.disabled and original.original_kind not in REACH_DISABLED_ENDPOINTS:
        raise EndpointDisabledForReruns
    rerun = original.model_copy(
        update={
            "delivery_id": new_id or rerun_id(delivery_id, uuid.uuid4().hex[:8]),
            "kind": kind,
            "endpoint_url": endpoint.url,
            "max_attempts": endpoint.retry.max_attempts,
            "rerun_of": delivery_id,
            "rerun_of_kind": original.original_kind,
            "message_id": original.message_id,
            # The original's was the registry as its event found it: the re-run reads it anew,
            # or a snapshot from before an edit (say, enabling the endpoint) could serve it.
            "registry_version": None,
        }
    )
    await start_delivery(client, task_queue, rerun)
    return rerun


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
    progress: Callable[[int], None],
) -> RecoveryResult:
    """Re-run an endpoint's failed and skipped deliveries since a moment, each at most once.

    Idempotent: a delivery's recovered re-run has a fixed id, so running this
    again, or a second recovery, finds it started and moves on. `progress` is
    told how many deliveries were found so far.
    """
    log = DeliveryLog(client, request.account, web_ui_url="")
    since = LogFilter(endpoint_id=request.endpoint_id, since=request.since).visibility_query(request.account)
    unsent = f"{sa.RESULT.name} IN ({quoted(DeliveryResult.FAILED)}, {quoted(DeliveryResult.SKIPPED)})"
    # Re-runs made by recovery are not recovered again: each failure gets one second chance.
    query = f"{since} AND {unsent} AND {sa.KIND.name} != {quoted(DeliveryKind.RECOVERY)}"
    found = started = 0
    async for execution in client.list_workflows(query):
        found += 1
        try:
            await rerun_delivery(
                client,
                task_queue,
                log,
                registry,
                execution.id,
                new_id=recovered_id(execution.id),
                kind=DeliveryKind.RECOVERY,
            )
            started += 1
        except WorkflowAlreadyStartedError:
            pass
        except EndpointDisabledForReruns:
            break  # disabled meanwhile: what is left waits for the next recovery, ids unchanged
        progress(found)
    return RecoveryResult(found=found, started=started)
