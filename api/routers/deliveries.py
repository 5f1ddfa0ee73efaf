"""`/v1/deliveries`: the delivery log — list with filters, one record, re-run."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from functools import cache
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict

from api.deps import ClientDep, DeliveryLogDep, RegistryDep, SettingsDep
from api.errors import documented, invalid_input
from domain.events import EventType
from domain.records import DeliveryResult
from domain.validation import PrintableText, QueryFlag, QueryWholeNumber, UtcInstant, check_within_retention
from infra.temporal import NamespaceRetention
from services.delivery_log import DeliveryDetail, DeliveryPage, LogFilter
from services.reruns import rerun_delivery

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])


class RerunStarted(BaseModel):
    id: str
    rerun_of: str


@router.get("", responses=documented(401, 422, 503))
async def list_deliveries(
    request: Request,
    client: ClientDep,
    log: DeliveryLogDep,
    endpoint_id: Annotated[PrintableText | None, Query(max_length=128)] = None,
    event: EventType | None = None,
    result: DeliveryResult | None = None,
    retried: QueryFlag | None = None,
    order_id: Annotated[PrintableText | None, Query(max_length=64)] = None,
    since: Annotated[UtcInstant | None, Query(description="deliveries started at or after (ISO 8601)")] = None,
    until: Annotated[UtcInstant | None, Query(description="deliveries started before (ISO 8601)")] = None,
    status_code: Annotated[
        QueryWholeNumber | None, Query(ge=100, le=599, description="the last response's HTTP status")
    ] = None,
    limit: Annotated[QueryWholeNumber, Query(ge=1, le=100)] = 50,
    page_token: str | None = None,
) -> DeliveryPage:
    """Newest first. Pass `next_page_token` back as `page_token`, with the same filters, for the next page."""
    # A filter given twice means two things (the last one would win, unseen by a proxy that reads the first).
    problems: dict[tuple[str, ...], str] = {
        ("query", name): "is given twice: send each parameter once"
        for name in _parameters()
        if len(request.query_params.getlist(name)) > 1
    }
    # A misspelt filter (`resul=failed`) would widen the page unseen, where a misspelt body field
    # is refused. Reported on the query as a whole, as an unknown body field is on its object.
    if not _parameters().issuperset(request.query_params):
        problems[("query", "query")] = UNKNOWN_PARAMETER
    # Before the retention the log holds nothing: a 422 (CONTRACT §5), not an empty page.
    bounds = {name: moment for name, moment in (("since", since), ("until", until)) if moment is not None}
    if bounds:
        retention: NamespaceRetention = request.app.state.log_retention
        kept, now = await retention.of(client), datetime.now(UTC)
        for name, moment in bounds.items():
            try:
                check_within_retention(moment, now, kept)
            except ValueError as err:
                problems[("query", name)] = str(err)
    if problems:
        raise invalid_input(problems)
    log_filter = LogFilter(endpoint_id, event, result, retried, order_id, since, until, status_code)
    return await log.page(log_filter, limit, page_token)


UNKNOWN_PARAMETER = (
    "has a parameter that is not one of the log's filters (an unknown name is not repeated: it could be a secret)"
)


@cache
def _parameters() -> frozenset[str]:
    """The list's query parameters: its signature's, but for what FastAPI gives it."""
    return frozenset(inspect.signature(list_deliveries).parameters) - {"request", "client", "log"}


@router.get("/{delivery_id:path}", responses=documented(401, 404, 503))
async def get_delivery(delivery_id: str, log: DeliveryLogDep) -> DeliveryDetail:
    """Everything sent and received; for a pending delivery, its attempts so far and the next one's time."""
    return await log.detail(delivery_id)


class RetryRequest(BaseModel):
    """What `POST …/retry` may carry: nothing, or `{}`; a field is refused like in every body."""

    model_config = ConfigDict(extra="forbid")


@router.post(
    "/{delivery_id:path}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses=documented(401, 404, 409, 413, 422, 503),
)
async def retry_delivery(
    delivery_id: str,
    log: DeliveryLogDep,
    registry: RegistryDep,
    client: ClientDep,
    settings: SettingsDep,
    body: RetryRequest | None = None,  # read only so that a body with fields is refused
) -> RerunStarted:
    """Re-run a finished delivery as a new one, with the endpoint's current configuration.

    A 409 while it is pending, or while its endpoint is disabled (but for tests and first connections)."""
    rerun = await rerun_delivery(client, settings.task_queue, log, registry, delivery_id)
    return RerunStarted(id=rerun.delivery_id, rerun_of=delivery_id)
