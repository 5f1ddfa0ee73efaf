"""`recover_deliveries`: re-run an endpoint's failed and skipped deliveries, each at most once."""

from __future__ import annotations

from collections.abc import Callable

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.delivery import RECOVER_DELIVERIES, RecoveryRequest, RecoveryResult
from domain.records import DeliveryKind, DeliveryResult
from runtime.deliveries import rerun_delivery
from runtime.delivery_log import DeliveryLog, LogFilter
from runtime.registry import EndpointRegistry
from workflows import search_attributes as sa


def _quoted(value: str) -> str:
    return f'"{value}"'


class RecoveryActivities:
    def __init__(self, client: Client, task_queue: str, registries: Callable[[str], EndpointRegistry]) -> None:
        self._client = client
        self._task_queue = task_queue
        self._registries = registries

    @activity.defn(name=RECOVER_DELIVERIES)
    async def recover_deliveries(self, request: RecoveryRequest) -> RecoveryResult:
        """Idempotent: a failed delivery's re-run has a fixed id, so a retry of this
        activity, or a second recovery, finds it started and moves on."""
        log = DeliveryLog(self._client, request.account, web_ui_url="")
        since = LogFilter(endpoint_id=request.endpoint_id, since=request.since).visibility_query(request.account)
        unsent = f"{sa.RESULT.name} IN ({_quoted(DeliveryResult.FAILED)}, {_quoted(DeliveryResult.SKIPPED)})"
        # Re-runs made by recovery are not recovered again: each failure gets one second chance.
        query = f"{since} AND {unsent} AND {sa.KIND.name} != {_quoted(DeliveryKind.RECOVERY)}"
        registry = self._registries(request.account)
        found = started = 0
        async for execution in self._client.list_workflows(query):
            found += 1
            try:
                await rerun_delivery(
                    self._client,
                    self._task_queue,
                    log,
                    registry,
                    execution.id,
                    new_id=f"{execution.id}/recovered",
                    kind=DeliveryKind.RECOVERY,
                )
                started += 1
            except WorkflowAlreadyStartedError:
                pass
            activity.heartbeat(found)
        return RecoveryResult(found=found, started=started)
