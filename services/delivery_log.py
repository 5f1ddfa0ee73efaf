"""The delivery log, read from Temporal: visibility for the list, the workflow itself for one record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus

from domain.delivery import DeliveryInput
from domain.events import EventType
from domain.ids import is_delivery_id
from domain.records import DeliveryKind, DeliveryRecord, DeliveryResult
from infra.temporal import or_none
from services.deliveries import ended_record
from services.log_window import Cursor, Row, newest, quoted, visibility_time
from services.pending_delivery import pending_state
from workflows import search_attributes as sa
from workflows.delivery import DeliveryWorkflow


class DeliveryNotFound(Exception):
    pass


@dataclass(frozen=True)
class LogFilter:
    """The log's filters; every one combines with the others."""

    endpoint_id: str | None = None
    event: EventType | None = None
    result: DeliveryResult | None = None
    retried: bool | None = None
    order_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status_code: int | None = None

    def visibility_query(self, account: str) -> str:
        """The same filter as an operator types it in the Temporal Web UI."""
        clauses = [f'WorkflowType = "{DeliveryWorkflow.__name__}"', f"{sa.ACCOUNT.name} = {quoted(account)}"]
        if self.endpoint_id is not None:
            clauses.append(f"{sa.ENDPOINT_ID.name} = {quoted(self.endpoint_id)}")
        if self.event is not None:
            clauses.append(f"{sa.EVENT_TYPE.name} = {quoted(self.event.value)}")
        if self.result is not None:
            clauses.append(RESULT_CLAUSES[self.result])
        if self.retried is not None:
            clauses.append(f"{sa.RETRIES.name} {'>' if self.retried else '='} 0")
        if self.order_id is not None:
            clauses.append(f"{sa.ORDER_ID.name} = {quoted(self.order_id)}")
        if self.status_code is not None:
            clauses.append(_status_clause(self.status_code))
        if self.since is not None:
            clauses.append(f"StartTime >= {quoted(visibility_time(self.since))}")
        if self.until is not None:
            clauses.append(f"StartTime < {quoted(visibility_time(self.until))}")
        return " AND ".join(clauses)


# A delivery's result in visibility terms. A first-attempt success records no result
# (see DeliveryWorkflow): it is a completed run without one. A run closed any other
# way than completing did not deliver.
RESULT_CLAUSES = {
    DeliveryResult.PENDING: 'ExecutionStatus = "Running"',
    DeliveryResult.SUCCESS: f'ExecutionStatus = "Completed" AND ({sa.RESULT.name} IS NULL '
    f'OR {sa.RESULT.name} = "{DeliveryResult.SUCCESS}")',
    DeliveryResult.FAILED: f'({sa.RESULT.name} = "{DeliveryResult.FAILED}" '
    'OR (ExecutionStatus != "Running" AND ExecutionStatus != "Completed"))',
    DeliveryResult.SKIPPED: f'{sa.RESULT.name} = "{DeliveryResult.SKIPPED}"',
}


def _status_clause(status_code: int) -> str:
    """The last response's status. A first-attempt 200 indexes nothing (see DeliveryWorkflow):
    a completed run without a result answered 200."""
    clause = f"{sa.STATUS_CODE.name} = {int(status_code)}"
    if status_code == 200:
        clause = f'({clause} OR (ExecutionStatus = "Completed" AND {sa.RESULT.name} IS NULL))'
    return clause


class DeliverySummary(BaseModel):
    """One row of the log list: the seed's columns, from visibility alone."""

    id: str
    kind: DeliveryKind | None
    event_id: str | None
    event: EventType | None
    endpoint_id: str | None
    endpoint_url: str | None
    order_id: str | None
    transaction_id: str | None
    carrier: str | None
    result: DeliveryResult
    retry: int
    date: datetime
    date_end: datetime | None
    time_spent_ms: int | None
    rerun_of: str | None
    # The last response's status and the delivery's error, once it ended (null while pending).
    status_code: int | None = None
    error: str | None = None
    web_ui_url: str


class DeliveryPage(BaseModel):
    data: list[DeliverySummary]
    next_page_token: str | None


class DeliveryDetail(DeliveryRecord):
    """The full record, plus when a pending delivery's next attempt is due and its link in the Web UI."""

    next_attempt_at: datetime | None = None
    web_ui_url: str


class DeliveryLog:
    """One account's deliveries."""

    def __init__(self, client: Client, account: str, web_ui_url: str) -> None:
        self._client = client
        self._account = account
        self._web_ui_url = web_ui_url.rstrip("/")

    def web_ui_link(self, workflow_id: str, run_id: str | None = None) -> str:
        base = f"{self._web_ui_url}/namespaces/{quote(self._client.namespace, safe='')}/workflows/"
        return base + quote(workflow_id, safe="") + (f"/{run_id}/history" if run_id else "")

    # -- the list ------------------------------------------------------------

    async def page(self, log_filter: LogFilter, limit: int, page_token: str | None = None) -> DeliveryPage:
        """Newest first by start time. Start times never change and new deliveries start
        later than any row already served, so a cursor on them never skips or repeats."""
        query = log_filter.visibility_query(self._account)
        digest = hashlib.sha256(query.encode()).hexdigest()[:16]
        cursor = Cursor.decode(page_token, digest) if page_token else None
        # By row object, kept alive so its id stays its own: a window listed again may hold a
        # newer state of a row built already, which must be built again.
        built: dict[int, tuple[Row, DeliverySummary]] = {}

        async def build(rows: Sequence[Row]) -> None:
            fresh = [row for row in rows if id(row) not in built]
            if fresh:
                built.update(
                    (id(row), (row, summary)) for row, summary in zip(fresh, await self._summaries(fresh), strict=True)
                )

        # The rows are built while visibility checks that no other row belongs to the page,
        # when it must: the API's work on the page and the server's on that listing overlap.
        served, more = await newest(self._client, query, cursor, limit, meanwhile=build)
        await build(served)
        next_token = Cursor(served[-1].start, served[-1].id, digest).encode() if more and served else None
        return DeliveryPage(data=[built[id(row)][1] for row in served], next_page_token=next_token)

    async def _summaries(self, rows: Sequence[Row]) -> list[DeliverySummary]:
        memos = await self._memos([row.info.memo.fields for row in rows])
        return [
            self._summary(row, attrs, memo)
            for row, attrs, memo in zip(rows, _search_attributes(rows), memos, strict=True)
        ]

    def _summary(self, row: Row, attrs: Mapping[str, Any], memo: Mapping[str, Any]) -> DeliverySummary:
        info = row.info
        event = attrs.get(sa.EVENT_TYPE.name)
        kind = attrs.get(sa.KIND.name)
        status = WorkflowExecutionStatus(info.status)
        result = attrs.get(sa.RESULT.name)
        # Built from values this service indexed, so not validated again: validating a page's
        # rows cost more than a millisecond, against one visibility listing's ~15.
        return DeliverySummary.model_construct(
            id=row.id,
            kind=DeliveryKind(kind) if kind else None,
            event_id=attrs.get(sa.EVENT_ID.name),
            event=EventType(event) if event else None,
            endpoint_id=attrs.get(sa.ENDPOINT_ID.name),
            endpoint_url=memo.get(sa.MEMO_ENDPOINT_URL),
            order_id=attrs.get(sa.ORDER_ID.name),
            transaction_id=attrs.get(sa.TRANSACTION_ID.name),
            carrier=attrs.get(sa.CARRIER.name),
            result=delivery_result(status, result),
            retry=attrs.get(sa.RETRIES.name) or 0,
            date=row.start,
            date_end=row.closed,
            time_spent_ms=attrs.get(sa.TIME_SPENT_MS.name),
            rerun_of=memo.get(sa.MEMO_RERUN_OF),
            status_code=_status_code(status, result, attrs.get(sa.STATUS_CODE.name)),
            error=memo.get(sa.MEMO_ERROR),
            web_ui_url=self.web_ui_link(row.id, info.execution.run_id),
        )

    async def _memos(self, memos: Sequence[Mapping[str, Payload]]) -> list[dict[str, Any]]:
        """Each row's memo fields, decoded (they go through the codec, unlike search attributes)
        in one call for the page: per row, the calls cost more than the decryption."""
        names = [list(memo) for memo in memos]
        payloads = [memo[name] for memo, row in zip(memos, names, strict=True) for name in row]
        values = iter(await self._client.data_converter.decode(payloads))
        return [{name: next(values) for name in row} for row in names]

    # -- one delivery --------------------------------------------------------

    async def describe(self, delivery_id: str) -> WorkflowExecutionDescription:
        """The delivery's workflow, if it is a delivery of this account."""
        if not is_delivery_id(delivery_id):
            raise DeliveryNotFound(delivery_id)
        execution = await or_none(self._client.get_workflow_handle(delivery_id).describe())
        if execution is None or execution.typed_search_attributes.get(sa.ACCOUNT) != self._account:
            raise DeliveryNotFound(delivery_id)
        return execution

    async def detail(self, delivery_id: str) -> DeliveryDetail:
        execution = await self.describe(delivery_id)
        link = self.web_ui_link(execution.id, execution.run_id)
        handle = self._client.get_workflow_handle_for(DeliveryWorkflow.run, delivery_id, run_id=execution.run_id)
        if execution.status in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.FAILED):
            record = await ended_record(handle)
            return DeliveryDetail(**dict(record), web_ui_url=link)
        delivery = await self.delivery_input(delivery_id, execution.run_id)
        pending = await pending_state(self._client, execution)
        record = delivery.record(
            pending.last,
            result=delivery_result(execution.status, None),
            error=pending.last.error if pending.last else pending.error,
            retries=max(pending.attempts - 1, 0),
            date=execution.start_time,
            date_end=execution.close_time,
        )
        return DeliveryDetail(**dict(record), next_attempt_at=pending.next_attempt_at, web_ui_url=link)

    async def delivery_input(self, delivery_id: str, run_id: str | None = None) -> DeliveryInput:
        """What the delivery was started with: the first event of its history."""
        handle = self._client.get_workflow_handle(delivery_id, run_id=run_id)
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [delivery] = await self._client.data_converter.decode(payloads, [DeliveryInput])
            assert isinstance(delivery, DeliveryInput)
            return delivery
        raise DeliveryNotFound(delivery_id)


def _search_attributes(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Each row's search attributes by name. They are JSON, never through the codec (the
    server must read them): a page's are decoded as one JSON array, as a call per value cost
    the page about as much as all its other work."""
    names: list[list[str]] = []
    texts: list[bytes] = []
    for row in rows:
        fields = row.info.search_attributes.indexed_fields
        names.append([name for name, payload in fields.items() if payload.data])
        texts += (fields[name].data for name in names[-1])
    decoded = json.loads(b"[" + b",".join(texts) + b"]")
    if len(decoded) != len(texts):  # visibility checks each value's type: never seen
        raise ValueError("a search attribute's value is not one JSON value")
    values = iter(decoded)
    return [{name: next(values) for name in row_names} for row_names in names]


def _status_code(status: WorkflowExecutionStatus, result: str | None, indexed: int | None) -> int | None:
    if indexed is not None:
        return indexed
    first_attempt_200 = status == WorkflowExecutionStatus.COMPLETED
    return 200 if first_attempt_200 and result is None else None


def delivery_result(status: WorkflowExecutionStatus | None, recorded: str | None) -> DeliveryResult:
    """A delivery's result from visibility: its run's status and the result it recorded, if any."""
    if status == WorkflowExecutionStatus.RUNNING:
        return DeliveryResult.PENDING
    if recorded:
        return DeliveryResult(recorded)
    # Completed without recording an outcome: a first-attempt success. Closed any
    # other way (terminated, timed out) without one: it did not deliver.
    return DeliveryResult.SUCCESS if status == WorkflowExecutionStatus.COMPLETED else DeliveryResult.FAILED
