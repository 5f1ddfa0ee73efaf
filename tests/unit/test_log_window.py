"""The delivery log's paging, against a fake visibility that lists in any order it likes.

Visibility lists by close time, not start time, so a capped list is an arbitrary sample of
the matching rows; paging must still serve each row once, newest first by (start, id).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus as RawStatus
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest, ListWorkflowExecutionsResponse
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.converter import DataConverter

from domain.records import DeliveryResult
from services import log_window
from services.delivery_log import DeliveryLog, DeliverySummary, LogFilter, _search_attributes
from services.log_window import BadPageToken

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
_BOUND = re.compile(r'StartTime (>=|<) "([^"]+)"')
_NOT_IN = re.compile(r"WorkflowId NOT IN \(([^)]*)\)")


@dataclass
class _Row:
    """What the log reads of a listed workflow execution."""

    id: str
    start_time: datetime
    rank: int  # where visibility lists it
    run_id: str = "run"
    status: WorkflowExecutionStatus = WorkflowExecutionStatus.RUNNING
    close_time: datetime | None = None


@dataclass
class _Visibility:
    """Applies the query's StartTime bounds and `WorkflowId NOT IN` (the fake holds only rows
    matching the rest), and answers the raw `ListWorkflowExecutions` in its own rank order."""

    rows: list[_Row]
    namespace: str = "default"
    lists: list[tuple[int | None, int]] = field(default_factory=list)  # (cap, rows listed)
    data_converter: DataConverter = DataConverter.default

    @property
    def workflow_service(self) -> _Visibility:
        return self

    async def list_workflow_executions(self, request: ListWorkflowExecutionsRequest) -> ListWorkflowExecutionsResponse:
        bounds = [(op, datetime.fromisoformat(moment)) for op, moment in _BOUND.findall(request.query)]
        excluded = _NOT_IN.search(request.query)
        skip = set(re.findall(r'"([^"]+)"', excluded.group(1))) if excluded else set()
        found = [
            row
            for row in sorted(self.rows, key=lambda r: r.rank)
            if row.id not in skip and all(row.start_time >= t if op == ">=" else row.start_time < t for op, t in bounds)
        ]
        offset = int(request.next_page_token or b"0")
        listed = found[offset : offset + request.page_size]
        more = offset + request.page_size < len(found)
        # One listing as the log sees it: its cap, and every row it got over all pages.
        if offset == 0:
            self.lists.append((request.page_size, 0))
        cap, got = self.lists[-1]
        self.lists[-1] = (cap, got + len(listed))
        return ListWorkflowExecutionsResponse(
            executions=[_info(row) for row in listed],
            next_page_token=str(offset + request.page_size).encode() if more else b"",
        )

    async def count_workflows(self, query: str) -> None:
        raise AssertionError("counts scan every matching row")


def _info(row: _Row) -> WorkflowExecutionInfo:
    info = WorkflowExecutionInfo(
        execution=WorkflowExecution(workflow_id=row.id, run_id=row.run_id), status=RawStatus.ValueType(int(row.status))
    )
    info.start_time.FromDatetime(row.start_time)
    if row.close_time is not None:
        info.close_time.FromDatetime(row.close_time)
    return info


def _visibility_order(rows: list[_Row]) -> list[_Row]:
    """Ranked as visibility lists them: running rows newest first, then closed ones by close time."""
    latest = datetime.max.replace(tzinfo=UTC)
    ordered = sorted(rows, key=lambda r: (r.close_time or latest, r.start_time, r.id), reverse=True)
    for rank, row in enumerate(ordered):
        row.rank = rank
    return ordered


def _closed(i: int, start: datetime, took: timedelta) -> _Row:
    return _Row(f"d{i:05d}", start, 0, status=WorkflowExecutionStatus.COMPLETED, close_time=start + took)


def _log(visibility: _Visibility) -> DeliveryLog:
    return DeliveryLog(cast(Client, visibility), "acme", web_ui_url="http://ui")


async def _page_through(log: DeliveryLog, visibility: _Visibility, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    token = None
    while True:
        page = await log.page(LogFilter(), limit, token)
        pages.append([row.id for row in page.data])
        # A delivery that starts mid-paging is newer than every row served so far.
        newest = max((row.start_time for row in visibility.rows), default=BASE)
        visibility.rows.append(_Row(f"late-{len(pages)}", newest + timedelta(seconds=1), rank=-len(pages)))
        token = page.next_page_token
        if token is None:
            return pages
        assert len(pages) < 1000, "paging does not end"


def _newest_first(rows: list[_Row]) -> list[str]:
    return [row.id for row in sorted(rows, key=lambda r: (r.start_time, r.id), reverse=True)]


@settings(max_examples=300, deadline=None)
@given(
    # Few distinct start times, so many rows tie on their start.
    rows=st.lists(st.tuples(st.integers(0, 12), st.integers()), max_size=60),
    limit=st.integers(1, 6),
    min_window_rows=st.integers(1, 12),
)
def test_paging_serves_every_row_once_newest_first_in_any_listing_order(
    rows: list[tuple[int, int]], limit: int, min_window_rows: int
) -> None:
    log_rows = [_Row(f"d{i:02d}", BASE + timedelta(microseconds=start), rank) for i, (start, rank) in enumerate(rows)]
    visibility = _Visibility(list(log_rows))

    with patch.object(log_window, "_MIN_WINDOW_ROWS", min_window_rows):
        pages = asyncio.run(_page_through(_log(visibility), visibility, limit))

    served = [delivery_id for page in pages for delivery_id in page]
    assert served == _newest_first(log_rows)
    assert all(len(page) == limit for page in pages[:-1])  # only the last page is short
    assert len(pages[-1]) <= limit and (len(pages) == 1 or pages[-1])


def test_a_first_page_lists_its_rows_about_once_when_visibility_lists_newest_first() -> None:
    """Running rows come newest first: the first few bound a window holding just the page, and
    the window's listing leaves out the rows listed already (it finds none other)."""
    rows = [_Row(f"d{i:05d}", BASE + timedelta(milliseconds=i), rank=-i) for i in range(10_000)]
    visibility = _Visibility(rows)

    page = asyncio.run(_log(visibility).page(LogFilter(), 5))

    assert [row.id for row in page.data] == _newest_first(rows)[:5]
    assert page.next_page_token is not None
    assert visibility.lists == [(6, 6), (201, 0)]


@dataclass
class _SlowVisibility(_Visibility):
    """Answers each listing after other tasks had their turn, noting when it was asked and answered."""

    steps: list[str] = field(default_factory=list)

    async def list_workflow_executions(self, request: ListWorkflowExecutionsRequest) -> ListWorkflowExecutionsResponse:
        self.steps.append("asked")
        await asyncio.sleep(0)
        answer = await super().list_workflow_executions(request)
        self.steps.append("answered")
        return answer


def test_a_page_is_built_while_visibility_checks_its_window() -> None:
    """Running rows listed first: the page's rows are built, each once, while the narrower
    listing that looks for rows left out is on its way, not after it."""
    rows = [_Row(f"d{i:05d}", BASE + timedelta(milliseconds=i), rank=-i) for i in range(1_000)]
    visibility = _SlowVisibility(rows)
    log = _log(visibility)
    summary = log._summary

    def noted(row: log_window.Row, attrs: Mapping[str, Any], memo: Mapping[str, Any]) -> DeliverySummary:
        visibility.steps.append(f"built {row.id}")
        return summary(row, attrs, memo)

    with patch.object(log, "_summary", noted):
        page = asyncio.run(log.page(LogFilter(), 3))

    newest = _newest_first(rows)[:3]
    assert [row.id for row in page.data] == newest
    assert visibility.lists == [(4, 4), (201, 0)]
    assert visibility.steps == ["asked", "answered", "asked", *(f"built {i}" for i in newest), "answered"]


@settings(max_examples=300, deadline=None)
@given(
    # (start, how long it ran or None while it runs): few distinct instants, so rows tie.
    rows=st.lists(st.tuples(st.integers(0, 12), st.none() | st.integers(0, 12)), max_size=60),
    limit=st.integers(1, 6),
)
def test_paging_in_visibility_order_serves_every_row_once_newest_first(
    rows: list[tuple[int, int | None]], limit: int
) -> None:
    """Rows listed as visibility lists them, closed ones among them: a listing that ends on a
    closed row may settle the page alone, and paging still serves each row once, in order."""
    log_rows = [
        _Row(f"d{i:02d}", BASE + timedelta(microseconds=start), 0)
        if took is None
        else _closed(i, BASE + timedelta(microseconds=start), timedelta(microseconds=took))
        for i, (start, took) in enumerate(rows)
    ]
    visibility = _Visibility(_visibility_order(log_rows))

    pages = asyncio.run(_page_through(_log(visibility), visibility, limit))

    served = [delivery_id for page in pages for delivery_id in page]
    assert served == _newest_first(log_rows)
    assert all(len(page) == limit for page in pages[:-1])


def test_a_first_page_of_closed_deliveries_is_one_listing() -> None:
    """Deliveries that ended quickly: the listing's last row closed before the page's rows
    started, so no row it left out can belong to the page."""
    rows = _visibility_order([_closed(i, BASE + timedelta(seconds=i), timedelta(milliseconds=80)) for i in range(500)])
    visibility = _Visibility(rows)

    page = asyncio.run(_log(visibility).page(LogFilter(), 5))

    assert [row.id for row in page.data] == _newest_first(rows)[:5]
    assert page.next_page_token is not None
    assert visibility.lists == [(6, 6)]


def test_closed_deliveries_that_overlap_the_page_are_looked_for() -> None:
    """Deliveries that took 10 s: the listing's last row closed after the page's rows started,
    so a row left out (it closed earlier) may have started among them, and here one did."""
    slow = [_closed(i, BASE + timedelta(seconds=i), timedelta(seconds=10)) for i in range(1, 8)]
    quicker = _closed(8, BASE + timedelta(seconds=6.5), timedelta(seconds=5.5))  # closed before all of them
    rows = _visibility_order([*slow, quicker])
    visibility = _Visibility(rows)

    page = asyncio.run(_log(visibility).page(LogFilter(), 3))

    assert [row.id for row in page.data] == ["d00007", "d00008", "d00006"]
    assert [cap for cap, _ in visibility.lists] == [4, 201]


def test_a_listing_out_of_visibility_order_is_not_trusted_to_be_complete() -> None:
    """Were the close times listed out of order, the listing says nothing of the rows past it."""
    rows = [_closed(i, BASE + timedelta(seconds=i), timedelta(milliseconds=10)) for i in range(20)]
    # Listed first: d18, d01, d17, d16, d00. Its last row closed before four of them started,
    # but d01 listed before d17 shows the order is not by close time: d19 may (and does) follow.
    listed_first = [18, 1, 17, 16, 0]
    for rank, i in enumerate(listed_first + [i for i in range(20) if i not in listed_first]):
        rows[i].rank = rank
    visibility = _Visibility(rows)

    page = asyncio.run(_log(visibility).page(LogFilter(), 3))

    assert [row.id for row in page.data] == _newest_first(rows)[:3]
    assert len(visibility.lists) > 1


def test_a_listing_order_unrelated_to_start_time_still_narrows_to_a_window() -> None:
    """Each capped list of 201 rows narrows the window about 30-fold: from 10,000 rows to a
    dozen in a few lists, none of them uncapped."""
    ranks = list(range(10_000))
    random.Random(7).shuffle(ranks)
    rows = [_Row(f"d{i:05d}", BASE + timedelta(milliseconds=i), rank) for i, rank in enumerate(ranks)]
    visibility = _Visibility(rows)

    page = asyncio.run(_log(visibility).page(LogFilter(), 5))

    assert [row.id for row in page.data] == _newest_first(rows)[:5]
    assert page.next_page_token is not None
    assert [cap for cap, _ in visibility.lists] == [6, 201, 201, 201]
    assert visibility.lists[-1][1] < 201


def test_rows_that_tie_on_their_start_beyond_the_cap_are_read_in_full() -> None:
    rows = [_Row(f"d{i:03d}", BASE, rank=i) for i in range(300)]
    visibility = _Visibility(rows)
    log = _log(visibility)

    first = asyncio.run(log.page(LogFilter(), 5))
    second = asyncio.run(log.page(LogFilter(), 5, first.next_page_token))

    assert [row.id for row in first.data + second.data] == _newest_first(rows)[:10]
    assert second.next_page_token is not None


@dataclass
class _ClosingVisibility(_Visibility):
    """Closes one row once the log has listed `after` times: a delivery that ends mid-page."""

    closes: str = ""
    after: int = 2

    async def list_workflow_executions(self, request: ListWorkflowExecutionsRequest) -> ListWorkflowExecutionsResponse:
        if len(self.lists) == self.after:
            row = next(row for row in self.rows if row.id == self.closes)
            row.status, row.close_time = WorkflowExecutionStatus.COMPLETED, BASE + timedelta(seconds=1)
        return await super().list_workflow_executions(request)


def test_a_row_built_ahead_is_served_as_the_last_listing_shows_it() -> None:
    """Rows that tie past the cap are listed again in full, after the page was built from an
    earlier listing; a delivery that ended in between is served ended, not pending."""
    rows = [_Row(f"d{i:03d}", BASE, rank=-i) for i in range(300)]  # the page's rows listed first
    newest = _newest_first(rows)[:5]
    visibility = _ClosingVisibility(rows, closes=newest[0])

    page = asyncio.run(_log(visibility).page(LogFilter(), 5))

    assert [row.id for row in page.data] == newest
    assert len(visibility.lists) == 3  # the page built ahead during the second
    assert page.data[0].result == DeliveryResult.SUCCESS
    assert page.data[0].date_end == BASE + timedelta(seconds=1)
    assert all(row.result == DeliveryResult.PENDING for row in page.data[1:])


def test_a_rows_search_attributes_are_read_by_name_with_their_json_types() -> None:
    """A page's search attributes are decoded together: each row keeps its own, keywords as
    text, integers as numbers, and an attribute a row lacks is null on that row alone."""

    def info(workflow_id: str, attributes: dict[str, bytes]) -> WorkflowExecutionInfo:
        listed = _info(_Row(workflow_id, BASE, 0, status=WorkflowExecutionStatus.FAILED, close_time=BASE))
        for name, data in attributes.items():
            listed.search_attributes.indexed_fields[name].CopyFrom(
                Payload(metadata={"encoding": b"json/plain"}, data=data)
            )
        return listed

    rows = [
        log_window.Row(
            info("d1", {"WebhookEndpointId": b'"ep_1"', "WebhookRetries": b"3", "WebhookStatusCode": b"503"})
        ),
        log_window.Row(info("d2", {"WebhookEndpointId": b'"ep_2"', "WebhookOrderId": b'"o-7"'})),
    ]

    first, second = _search_attributes(rows)

    assert first == {"WebhookEndpointId": "ep_1", "WebhookRetries": 3, "WebhookStatusCode": 503}
    assert second == {"WebhookEndpointId": "ep_2", "WebhookOrderId": "o-7"}


def test_a_token_of_other_filters_is_refused() -> None:
    rows = [_Row(f"d{i}", BASE + timedelta(seconds=i), rank=i) for i in range(3)]
    log = _log(_Visibility(rows))
    token = asyncio.run(log.page(LogFilter(), 1)).next_page_token
    assert token is not None

    with pytest.raises(BadPageToken):
        asyncio.run(log.page(LogFilter(order_id="o-1"), 1, token))


@pytest.mark.parametrize(
    "moment",
    ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999999+00:00", "9999-12-31T23:59:59-23:59", "not a time"],
)
def test_a_forged_token_with_a_start_outside_utc_is_refused_not_a_crash(moment: str) -> None:
    log = _log(_Visibility([_Row("d0", BASE, rank=0)]))
    digest = hashlib.sha256(LogFilter().visibility_query("acme").encode()).hexdigest()[:16]
    raw = json.dumps({"t": moment, "id": "d0", "f": digest}).encode()
    token = base64.urlsafe_b64encode(raw).decode().rstrip("=")

    with pytest.raises(BadPageToken):
        asyncio.run(log.page(LogFilter(), 1, token))
