"""The delivery log's index: custom search attributes on every `DeliveryWorkflow`.

Operators can type the same filters in the Temporal Web UI, e.g.
`WebhookResult = "failed" AND WebhookEndpointId = "ep_…"`.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes

from domain.delivery import DeliveryInput
from domain.records import DeliveryRecord
from domain.wire import order_fields

# Memo keys: what a log row shows that no filter needs.
MEMO_ENDPOINT_URL = "endpoint_url"
MEMO_RERUN_OF = "rerun_of"
MEMO_ERROR = "error"

ACCOUNT = SearchAttributeKey.for_keyword("WebhookAccount")
ENDPOINT_ID = SearchAttributeKey.for_keyword("WebhookEndpointId")
EVENT_ID = SearchAttributeKey.for_keyword("WebhookEventId")
EVENT_TYPE = SearchAttributeKey.for_keyword("WebhookEvent")
KIND = SearchAttributeKey.for_keyword("WebhookKind")
RESULT = SearchAttributeKey.for_keyword("WebhookResult")
RETRIES = SearchAttributeKey.for_int("WebhookRetries")
TIME_SPENT_MS = SearchAttributeKey.for_int("WebhookTimeSpentMs")
ORDER_ID = SearchAttributeKey.for_keyword("WebhookOrderId")
TRANSACTION_ID = SearchAttributeKey.for_keyword("WebhookTransactionId")
CARRIER = SearchAttributeKey.for_keyword("WebhookCarrier")
STATUS_CODE = SearchAttributeKey.for_int("WebhookStatusCode")

ALL: tuple[SearchAttributeKey[Any], ...] = (
    ACCOUNT,
    ENDPOINT_ID,
    EVENT_ID,
    EVENT_TYPE,
    KIND,
    RESULT,
    RETRIES,
    TIME_SPENT_MS,
    ORDER_ID,
    TRANSACTION_ID,
    CARRIER,
    STATUS_CODE,
)


def delivery_search_attributes(delivery: DeliveryInput) -> TypedSearchAttributes:
    """Set when a delivery starts, so it is listed (as pending) from its first moment.

    No result yet: a running delivery is pending, and one that completes without
    recording a result (a first-attempt success) succeeded.
    """
    order_id, transaction_id, carrier = order_fields(delivery.event)
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(ACCOUNT, delivery.account),
        SearchAttributePair(ENDPOINT_ID, delivery.endpoint_id),
        SearchAttributePair(EVENT_ID, delivery.event_id),
        SearchAttributePair(EVENT_TYPE, delivery.event.event.value),
        SearchAttributePair(KIND, delivery.kind.value),
        SearchAttributePair(RETRIES, 0),
        SearchAttributePair(ORDER_ID, order_id),
        SearchAttributePair(TRANSACTION_ID, transaction_id),
        SearchAttributePair(CARRIER, carrier),
    ]
    return TypedSearchAttributes(pairs)


def outcome_updates(record: DeliveryRecord, *, with_status: bool = True) -> list[SearchAttributeUpdate[Any]]:
    """Set when a delivery ends: what the log's result, retry and status filters read."""
    updates: list[SearchAttributeUpdate[Any]] = [RESULT.value_set(record.result.value), RETRIES.value_set(record.retry)]
    if record.time_spent_ms is not None:
        updates.append(TIME_SPENT_MS.value_set(record.time_spent_ms))
    if with_status and record.response is not None:
        updates.append(STATUS_CODE.value_set(record.response.status_code))
    return updates


def outcome_memo(record: DeliveryRecord) -> dict[str, str | None]:
    """What a log row shows of an ended delivery that no filter needs: its error."""
    return {MEMO_ERROR: record.error}


def delivery_memo(delivery: DeliveryInput) -> dict[str, str | None]:
    return {MEMO_ENDPOINT_URL: delivery.endpoint_url, MEMO_RERUN_OF: delivery.rerun_of}


def delivery_summary(delivery: DeliveryInput) -> str:
    """How a delivery reads in the Web UI's list: a log line."""
    event = delivery.event
    order_id = order_fields(event)[0]
    about = f" order {order_id}" if order_id else ""
    return f"{event.event.value}{about} → {delivery.endpoint_url} ({delivery.kind.value})"
