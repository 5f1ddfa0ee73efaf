"""Paging the delivery log out of visibility: the newest rows after a cursor, found by capped
listings of a narrowing StartTime window (visibility counts scan every matching row, and
lists by close time, not start time)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from itertools import pairwise

from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client

from domain.validation import utc_instant

# A page is cut from a StartTime window holding at most this many deliveries per
# requested row, found from capped lists (visibility counts scan every matching row).
_WINDOW_FACTOR = 4
_MIN_WINDOW_ROWS = 200
_MAX_PROBES = 8
# The most ids a narrowed window's listing excludes (those listed already) in its query.
_MAX_EXCLUDED = 110
_ONE_MICROSECOND = timedelta(microseconds=1)
_LATEST = datetime.max.replace(tzinfo=UTC)


class BadPageToken(ValueError):
    """A page token this API did not issue, or issued for other filters."""


def quoted(value: str) -> str:
    """A string literal of the visibility query language."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def visibility_time(moment: datetime) -> str:
    """An instant as a visibility query compares it: UTC, to the microsecond."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Cursor:
    """The last row served: rows are ordered by (start time, id), newest first."""

    start: datetime
    id: str
    filter_digest: str

    def encode(self) -> str:
        raw = json.dumps({"t": visibility_time(self.start), "id": self.id, "f": self.filter_digest})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, filter_digest: str) -> Cursor:
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


@dataclass(frozen=True)
class Row:
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


async def newest(
    client: Client,
    query: str,
    cursor: Cursor | None,
    limit: int,
    meanwhile: Callable[[list[Row]], Awaitable[object]] | None = None,
) -> tuple[list[Row], bool]:
    """The `limit` newest rows after the cursor, and whether any older one is left.

    `meanwhile` is given the page as far as it is known when a narrower listing must check
    the window for rows left out (which it rarely finds), and runs while that listing does.
    """
    # Bounds are exclusive; one microsecond past the cursor keeps rows that share its start.
    upper = cursor.start + _ONE_MICROSECOND if cursor else None
    window_cap = max(limit * _WINDOW_FACTOR, _MIN_WINDOW_ROWS) + 1
    # Lists cost the server per row returned (about 0.4 ms on the dev server), so the first
    # asks for barely a page: visibility lists running rows newest first, then closed ones
    # by close time, so those are usually the newest rows, and they bound a tight window.
    # One row past the page tells whether another page follows; after a cursor, one more, as
    # the listing's upper bound keeps the cursor's own row (rows that share its start time).
    cap = limit + 1 if cursor is None else limit + 2
    lower: datetime | None = None
    known: list[Row] = []  # rows of the window [lower, upper) listed already
    rows: list[Row] | None = None
    for _ in range(_MAX_PROBES):
        # The window's rows not listed yet: usually none or a few (closed ones that
        # started late), so a narrowed window costs one cheap listing, not its rows again.
        listing = _list(client, _bounded(query, lower, upper), cap, exclude=known)
        if known and meanwhile is not None:
            listed, _ = await asyncio.gather(listing, meanwhile(_after(known, cursor)[:limit]))
            meanwhile = None
        else:
            listed = await listing
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
        rows = await _list(client, _bounded(query, lower, upper), None)
    after = _after(rows, cursor)
    # Any lower bound was chosen with more than `limit` rows above it.
    return after[:limit], lower is not None or len(after) > limit


async def _list(client: Client, query: str, cap: int | None, exclude: Sequence[Row] = ()) -> list[Row]:
    """Raw listing: the SDK's `list_workflows` decodes every row's search attributes (about
    1 ms a row, most of a page's time), while only the rows served need them."""
    if exclude:
        query += f" AND WorkflowId NOT IN ({', '.join(quoted(row.id) for row in exclude)})"
    rows: list[Row] = []
    token = b""
    while cap is None or len(rows) < cap:
        request = ListWorkflowExecutionsRequest(
            namespace=client.namespace,
            page_size=min(cap - len(rows), 1000) if cap is not None else 1000,
            query=query,
            next_page_token=token,
        )
        listed = await client.workflow_service.list_workflow_executions(request)
        rows += [Row(info) for info in listed.executions]
        token = listed.next_page_token
        if not token:
            break
    return rows if cap is None else rows[:cap]


def _after(rows: list[Row], cursor: Cursor | None) -> list[Row]:
    """The rows older than the cursor, newest first."""
    newest_first = sorted(rows, key=lambda r: (r.start, r.id), reverse=True)
    if cursor is None:
        return newest_first
    return [r for r in newest_first if (r.start, r.id) < (cursor.start, cursor.id)]


def _complete_after(listed: Sequence[Row]) -> datetime | None:
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
        moment = quoted(visibility_time(lower))
        query += f" AND StartTime >= {moment} AND ExecutionTime >= {moment}"
    if upper is not None:
        query += f" AND StartTime < {quoted(visibility_time(upper))}"
    return query
