"""The delivery log, read from Temporal: visibility for the list, the workflow itself for one record."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from itertools import pairwise
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey

from domain.delivery import DeliveryInput
from domain.events import EventType
from domain.ids import is_delivery_id
from domain.records import DeliveryKind, DeliveryRecord, DeliveryResult
from domain.validation import utc_instant
from infra.temporal import or_none
from services.deliveries import ended_record
from services.pending_delivery import pending_state
from workflows import search_attributes as sa
from workflows.delivery import DeliveryWorkflow

# A page is cut from a StartTime window holding at most this many deliveries per
# requested row, found from capped lists (visibility counts scan every matching row).
_WINDOW_FACTOR = 4
_MIN_WINDOW_ROWS = 200
_MAX_PROBES = 8
# The most ids a narrowed window's listing excludes (those listed already) in its query.
_MAX_EXCLUDED = 110
_ONE_MICROSECOND = timedelta(microseconds=1)
_LATEST = datetime.max.replace(tzinfo=UTC)


class DeliveryNotFound(Exception):
    pass


class BadPageToken(ValueError):
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
            clauses.append(_RESULT_CLAUSES[self.result])
        if self.retried is not None:
            clauses.append(f"{sa.RETRIES.name} {'>' if self.retried else '='} 0")
        if self.order_id is not None:
            clauses.append(f"{sa.ORDER_ID.name} = {quoted(self.order_id)}")
        if self.status_code is not None:
            clauses.append(_status_clause(self.status_code))
        if self.since is not None:
            clauses.append(f"StartTime >= {quoted(_timestamp(self.since))}")
        if self.until is not None:
            clauses.append(f"StartTime < {quoted(_timestamp(self.until))}")
        return " AND ".join(clauses)


# A delivery's result in visibility terms. A first-attempt success records no result
# (see DeliveryWorkflow): it is a completed run without one. A run closed any other
# way than completing did not deliver.
_RESULT_CLAUSES = {
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


def quoted(value: str) -> str:
    """A string literal of the visibility query language."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


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


@dataclass(frozen=True)
class _Cursor:
    """The last row served: rows are ordered by (start time, id), newest first."""

    start: datetime
    id: str
    filter_digest: str

    def encode(self) -> str:
        raw = json.dumps({"t": _timestamp(self.start), "id": self.id, "f": self.filter_digest})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, filter_digest: str) -> _Cursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            start = utc_instant(datetime.fromisoformat(raw["t"]))
            cursor = cls(start, str(raw["id"]), str(raw["f"]))
        except (ValueError, KeyError, TypeError):
            raise BadPageToken("is not a token this API issued") from None
        if start >= _LATEST:  # the page's upper bound is one microsecond past the cursor
            raise BadPageToken("is not a token this API issued")
        if cursor.filter_digest != filter_digest:
            raise BadPageToken("belongs to other filters; start again without it")
        return cursor


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
        cursor = _Cursor.decode(page_token, digest) if page_token else None
        served, more = await self._newest(query, cursor, limit)
        next_token = _Cursor(served[-1].start, served[-1].id, digest).encode() if more and served else None
        memos = await self._memos([row.info.memo.fields for row in served])
        rows = [self._summary(row, memo) for row, memo in zip(served, memos, strict=True)]
        return DeliveryPage(data=rows, next_page_token=next_token)

    async def _newest(self, query: str, cursor: _Cursor | None, limit: int) -> tuple[list[_Row], bool]:
        """The `limit` newest rows after the cursor, and whether any older one is left."""
        # Bounds are exclusive; one microsecond past the cursor keeps rows that share its start.
        upper = cursor.start + _ONE_MICROSECOND if cursor else None
        window_cap = max(limit * _WINDOW_FACTOR, _MIN_WINDOW_ROWS) + 1
        # Lists cost the server per row returned (about 0.4 ms on the dev server), so the first
        # asks for barely a page: visibility lists running rows newest first, then closed ones
        # by close time, so those are usually the newest rows, and they bound a tight window.
        cap = limit + 2
        lower: datetime | None = None
        known: list[_Row] = []  # rows of the window [lower, upper) listed already
        rows: list[_Row] | None = None
        for _ in range(_MAX_PROBES):
            # The window's rows not listed yet: usually none or a few (closed ones that
            # started late), so a narrowed window costs one cheap listing, not its rows again.
            listed = await self._list(_bounded(query, lower, upper), cap, exclude=known)
            probe = known + listed
            if len(probe) < cap + len(known):
                rows = probe  # short of the cap: the whole window [lower, upper)
                break
            # A capped list is only some of the window's rows, in close-time order. But they
            # are real rows: if limit + 1 of them after the cursor start at or after s, so do
            # limit + 1 rows of the window, and [s, upper) holds the page and a row past it.
            after = _after(probe, cursor)
            if len(after) > limit and (complete := _complete_after(listed)) and after[limit - 1].start > complete:
                return after[:limit], True  # the page and a row past it, without listing again
            if len(after) > limit and (lower is None or after[limit].start > lower):
                lower = after[limit].start
            elif cap >= window_cap:
                break  # rows tie on their start: no sample narrows the window, read it whole
            cap = window_cap
            known = [row for row in probe if lower is None or row.start >= lower]
            if len(known) > _MAX_EXCLUDED:
                known = []  # too long a query: list the window again instead
        if rows is None:
            rows = await self._list(_bounded(query, lower, upper), None)
        after = _after(rows, cursor)
        # Any lower bound was chosen with more than `limit` rows above it.
        return after[:limit], lower is not None or len(after) > limit

    async def _list(self, query: str, cap: int | None, exclude: Sequence[_Row] = ()) -> list[_Row]:
        """Raw listing: the SDK's `list_workflows` decodes every row's search attributes (about
        1 ms a row, most of a page's time), while only the rows served need them."""
        if exclude:
            query += f" AND WorkflowId NOT IN ({', '.join(quoted(row.id) for row in exclude)})"
        rows: list[_Row] = []
        token = b""
        while cap is None or len(rows) < cap:
            request = ListWorkflowExecutionsRequest(
                namespace=self._client.namespace,
                page_size=min(cap - len(rows), 1000) if cap is not None else 1000,
                query=query,
                next_page_token=token,
            )
            listed = await self._client.workflow_service.list_workflow_executions(request)
            rows += [_Row(info) for info in listed.executions]
            token = listed.next_page_token
            if not token:
                break
        return rows if cap is None else rows[:cap]

    def _summary(self, row: _Row, memo: Mapping[str, Any]) -> DeliverySummary:
        info = row.info
        attrs = info.search_attributes.indexed_fields
        event = _keyword(attrs, sa.EVENT_TYPE)
        kind = _keyword(attrs, sa.KIND)
        status = WorkflowExecutionStatus(info.status)
        result = _keyword(attrs, sa.RESULT)
        return DeliverySummary(
            id=row.id,
            kind=DeliveryKind(kind) if kind else None,
            event_id=_keyword(attrs, sa.EVENT_ID),
            event=EventType(event) if event else None,
            endpoint_id=_keyword(attrs, sa.ENDPOINT_ID),
            endpoint_url=memo.get(sa.MEMO_ENDPOINT_URL),
            order_id=_keyword(attrs, sa.ORDER_ID),
            transaction_id=_keyword(attrs, sa.TRANSACTION_ID),
            carrier=_keyword(attrs, sa.CARRIER),
            result=_result(status, result),
            retry=_int(attrs, sa.RETRIES) or 0,
            date=row.start,
            date_end=info.close_time.ToDatetime(tzinfo=UTC) if info.HasField("close_time") else None,
            time_spent_ms=_int(attrs, sa.TIME_SPENT_MS),
            rerun_of=memo.get(sa.MEMO_RERUN_OF),
            status_code=_status_code(status, result, _int(attrs, sa.STATUS_CODE)),
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
            result=_result(execution.status, None),
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


@dataclass(frozen=True)
class _Row:
    """A listed delivery, undecoded but for what paging sorts by."""

    info: WorkflowExecutionInfo

    @property
    def id(self) -> str:
        return str(self.info.execution.workflow_id)

    @cached_property
    def start(self) -> datetime:
        return self.info.start_time.ToDatetime(tzinfo=UTC)

    @cached_property
    def closed(self) -> datetime | None:
        return self.info.close_time.ToDatetime(tzinfo=UTC) if self.info.HasField("close_time") else None


def _keyword(fields: Mapping[str, Payload], key: SearchAttributeKey[str]) -> str | None:
    """A keyword search attribute: JSON, never through the codec (the server must read it)."""
    payload = fields.get(key.name)
    return None if payload is None or not payload.data else str(json.loads(payload.data))


def _int(fields: Mapping[str, Payload], key: SearchAttributeKey[int]) -> int | None:
    payload = fields.get(key.name)
    return None if payload is None or not payload.data else int(json.loads(payload.data))


def _after(rows: list[_Row], cursor: _Cursor | None) -> list[_Row]:
    """The rows older than the cursor, newest first."""
    newest_first = sorted(rows, key=lambda r: (r.start, r.id), reverse=True)
    if cursor is None:
        return newest_first
    return [r for r in newest_first if (r.start, r.id) < (cursor.start, cursor.id)]


def _complete_after(listed: Sequence[_Row]) -> datetime | None:
    """An instant after which a capped listing holds every row of its query, when it ends on a
    closed row: visibility lists running rows first, then closed ones by close time, newest first
    (the order of every SQL store's ORDER BY and of Elasticsearch's default sort), so a row not
    listed closed at or before the last one did, and started no later. None when the listing
    ends on a running row or is not in that order (then nothing is known of the rows past it)."""
    closes = [row.closed for row in listed]
    first_closed = next((i for i, close in enumerate(closes) if close is not None), len(closes))
    closed = [close for close in closes[first_closed:] if close is not None]
    if not closed or len(closed) < len(closes) - first_closed:
        return None  # it ends on a running row, or lists one after a closed one
    if any(later > earlier for earlier, later in pairwise(closed)):
        return None
    return closed[-1]


def _bounded(query: str, lower: datetime | None, upper: datetime | None) -> str:
    if lower is not None:
        # The same bound on ExecutionTime (a delivery's start, as none is started with a delay,
        # and never earlier than it) adds no condition but lets the SQL stores seek the window
        # through their ExecutionTime index, instead of scanning every row listed before it.
        moment = quoted(_timestamp(lower))
        query += f" AND StartTime >= {moment} AND ExecutionTime >= {moment}"
    if upper is not None:
        query += f" AND StartTime < {quoted(_timestamp(upper))}"
    return query


def _status_code(status: WorkflowExecutionStatus, result: str | None, indexed: int | None) -> int | None:
    if indexed is not None:
        return indexed
    first_attempt_200 = status == WorkflowExecutionStatus.COMPLETED
    return 200 if first_attempt_200 and result is None else None


def _result(status: WorkflowExecutionStatus | None, recorded: str | None) -> DeliveryResult:
    if status == WorkflowExecutionStatus.RUNNING:
        return DeliveryResult.PENDING
    if recorded:
        return DeliveryResult(recorded)
    # Completed without recording an outcome: a first-attempt success. Closed any
    # other way (terminated, timed out) without one: it did not deliver.
    return DeliveryResult.SUCCESS if status == WorkflowExecutionStatus.COMPLETED else DeliveryResult.FAILED
