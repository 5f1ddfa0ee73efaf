"""What the delivery log shows: one attempt, and one delivery (an event to an endpoint)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AliasChoices, BaseModel, Field

from domain.events import EventType


class DeliveryResult(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"  # the endpoint was disabled; recover it once re-enabled
    PENDING = "pending"


class DeliveryKind(StrEnum):
    """Why a delivery exists: an event, an endpoint's first connection, a test, or a re-run."""

    EVENT = "event"
    FIRST_CONNECTION = "first_connection"
    TEST = "test"
    RERUN = "rerun"
    RECOVERY = "recovery"  # a re-run started by bulk recovery


# Deliveries of the seed's samples, not of events: checks of the connection, which the merchant
# asks for (a test) or which creating it sends (the seed: "always sends"). They reach an endpoint
# even while it is disabled.
SAMPLE_KINDS = frozenset({DeliveryKind.TEST, DeliveryKind.FIRST_CONNECTION})


class HttpRequestRecord(BaseModel):
    method: str
    url: str
    headers: dict[str, str]  # credentials masked
    body: str


class HttpResponseRecord(BaseModel):
    status_code: int
    status_text: str
    headers: dict[str, str]  # each value up to 1 KiB, all up to 16 KiB
    headers_truncated: bool = False
    body: str
    body_truncated: bool = False


class AttemptTimings(BaseModel):
    """Phases of one POST, in milliseconds; null where a phase did not happen (a kept-alive
    connection makes no connection or TLS handshake). httpcore resolves names inside its
    connect phase, so DNS time is part of `connect_ms` and `dns_ms` stays null."""

    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None
    total_ms: float | None = None


class Attempt(BaseModel):
    """One attempt (a POST) and its outcome, as the delivery log shows it (CONTRACT §8)."""

    # 1 for a delivery's first POST; histories recorded before the rename call it `attempt`.
    number: Annotated[int, Field(validation_alias=AliasChoices("number", "attempt"))]
    started_at: datetime
    # Recorded before the rename as `time_spent_ms`.
    duration_ms: Annotated[int, Field(validation_alias=AliasChoices("duration_ms", "time_spent_ms"))]
    request: HttpRequestRecord
    response: HttpResponseRecord | None
    error: str | None
    timings: AttemptTimings | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


class AttemptRecord(Attempt):
    """An attempt as the delivery activity reports it: with the delivery's attempts before it,
    so its result, its failure and its heartbeats each carry the whole story so far."""

    earlier: list[Attempt] = []

    def all_attempts(self) -> list[Attempt]:
        return [*self.earlier, Attempt.model_validate(self.model_dump(exclude={"earlier"}))]


class DeliveryRecord(BaseModel):
    """One row of the delivery log, with the seed's columns."""

    id: str
    kind: DeliveryKind
    event_id: str
    event: EventType
    endpoint_id: str
    endpoint_url: str | None
    order_id: str
    transaction_id: str
    carrier: str
    result: DeliveryResult
    retry: int  # retries performed: attempts after the first
    date: datetime
    date_end: datetime | None
    time_spent_ms: int | None  # the final attempt's HTTP exchange
    request: HttpRequestRecord | None
    response: HttpResponseRecord | None
    error: str | None
    rerun_of: str | None = None
    # Every POST made, oldest first (the record's request, response and error are the last's).
    attempts: list[Attempt] = []
