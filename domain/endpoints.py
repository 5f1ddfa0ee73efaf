"""Endpoint configuration: what a merchant registers, and how it is shown back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from domain.events import EventType
from domain.flow import Ordering, RateLimit, RateLimitRequest
from domain.records import Attempt
from domain.secrets import Sealed, SealedOr
from domain.signing import Scheme, SigningSecret
from domain.validation import (
    NO_COLON_OR_CONTROL_CHARACTERS,
    NO_CONTROL_CHARACTERS,
    AbsoluteHttpUrl,
    Description,
    EndpointUrl,
    HeaderName,
    HeaderValue,
)

MAX_RETRIES = 10
MASK = "********"
# How long a POST may trust a read of the registry, counted from when the read was asked; and
# so how long a change waits before it answers (EndpointRegistry._change): a POST begun within
# this of a read that missed a change began before that change was answered.
FRESH_SECONDS = 0.5

# Headers the service sets on every request; a custom header may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-type",
        "content-length",
        "transfer-encoding",
        "connection",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Password = Annotated[str, Field(min_length=1, max_length=256, pattern=NO_CONTROL_CHARACTERS)]
HeaderSecret = Annotated[HeaderValue, Field(max_length=4096)]


class BasicAuth(_Model):
    username: Annotated[str, Field(min_length=1, max_length=256, pattern=NO_COLON_OR_CONTROL_CHARACTERS)]
    # Text from the merchant; sealed by the API before the registry stores it (domain/secrets.py).
    password: Annotated[str | Sealed, SealedOr(Password)]


class RetrySettings(_Model):
    enabled: Annotated[bool, Field(strict=True)] = False
    max_retries: Annotated[int, Field(ge=0, le=MAX_RETRIES, strict=True)] = 0

    @property
    def max_attempts(self) -> int:
        """POSTs one delivery may make: the first one plus the allowed retries."""
        return 1 + (self.max_retries if self.enabled else 0)


# Rules on one field are checked on that field, not on the whole model: a model's own rules only
# run once every field is valid, and a refusal should name every problem at once.


def _not_reserved(key: str) -> str:
    if key.lower() in RESERVED_HEADERS:
        raise ValueError("is a header the service sets itself and cannot be replaced")
    return key


class CustomHeader(_Model):
    key: Annotated[HeaderName, Field(min_length=1, max_length=256), AfterValidator(_not_reserved)]
    value: Annotated[str | Sealed, SealedOr(HeaderSecret)]  # sealed like the password


def _distinct(events: list[EventType]) -> list[EventType]:
    if len(set(events)) != len(events):
        raise ValueError("must not list an event twice")
    return events


Events = Annotated[list[EventType], Field(min_length=1, max_length=len(EventType)), AfterValidator(_distinct)]


def _check_custom_header(header: CustomHeader | None, auth: BasicAuth | None) -> None:
    if header is not None and auth is not None and header.key.lower() == "authorization":
        raise ValueError(
            "custom_header.key: must not be authorization while auth is set (Basic authentication sets it)"
        )


class EndpointSpec(_Model):
    """Everything a merchant chooses about an endpoint (`POST /v1/endpoints`)."""

    url: AbsoluteHttpUrl
    events: Events
    auth: BasicAuth | None = None
    retry: RetrySettings = RetrySettings()
    custom_header: CustomHeader | None = None
    description: Annotated[str, Field(max_length=1024)] = ""
    # A disabled endpoint's events are recorded as skipped; PATCH false to re-enable.
    disabled: Annotated[bool, Field(strict=True)] = False
    rate_limit: RateLimit | None = None
    ordering: Ordering = Ordering.NONE

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_custom_header(self.custom_header, self.auth)
        return self


class EndpointPatch(_Model):
    """Any subset of the spec (`PATCH /v1/endpoints/{id}`); null clears auth, the custom header or the rate limit."""

    url: AbsoluteHttpUrl | None = None
    events: Events | None = None
    auth: BasicAuth | None = None
    retry: RetrySettings | None = None
    custom_header: CustomHeader | None = None
    description: Annotated[str, Field(max_length=1024)] | None = None
    disabled: Annotated[bool, Field(strict=True)] | None = None
    rate_limit: RateLimit | None = None
    ordering: Ordering | None = None

    @model_serializer(mode="wrap")
    def _only_fields_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An absent field and a null one mean different things; keep that across the wire.
        data: dict[str, Any] = handler(self)
        return {name: value for name, value in data.items() if name in self.model_fields_set}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for field in ("url", "events", "retry", "description", "disabled", "ordering"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field}: cannot be null")
        return self

    def apply_to(self, spec: EndpointSpec) -> EndpointSpec:
        """The spec after this patch, validated as a whole (raises `ValidationError`)."""
        changes = {name: getattr(self, name) for name in self.model_fields_set}
        merged = spec.model_dump() | {
            k: (v.model_dump() if isinstance(v, BaseModel) else v) for k, v in changes.items()
        }
        return EndpointSpec.model_validate(merged)


def _no_edge_whitespace(value: str) -> str:
    if value != value.strip(" \t"):
        raise ValueError("must not begin or end with a space or tab (HTTP does not allow it)")
    return value


class CustomHeaderRequest(CustomHeader):
    """A custom header as the API accepts it today (see EndpointRequest): a value HTTP can carry."""

    value: Annotated[str | Sealed, SealedOr(Annotated[HeaderSecret, AfterValidator(_no_edge_whitespace)])]


class EndpointRequest(EndpointSpec):
    """`POST /v1/endpoints` as the API accepts it today: a spec whose URL's host a resolver takes,
    and whose description shows as it is written.

    What is stored (`EndpointSpec`, `Endpoint`, the registry's update arguments) keeps the
    rules it was accepted under, so a registry holding a URL from before a rule still loads and
    replays; the delivery activity refuses such a host at send time, without retries.
    """

    url: EndpointUrl
    rate_limit: RateLimitRequest | None = None
    custom_header: CustomHeaderRequest | None = None
    description: Description = ""


class EndpointPatchRequest(EndpointPatch):
    """`PATCH /v1/endpoints/{id}` as the API accepts it today (see EndpointRequest)."""

    url: EndpointUrl | None = None
    rate_limit: RateLimitRequest | None = None
    custom_header: CustomHeaderRequest | None = None
    description: Description | None = None


class EndpointHealth(BaseModel):
    """The current run of failed deliveries; enough of them over long enough disables the endpoint."""

    failed_deliveries: list[str] = []  # ids, so a repeated report counts once
    failing_since: datetime | None = None
    disabled_reason: str | None = None
    # When a POST to the endpoint began a run of failed POSTs that looks like an outage (see
    # `begins_failing_posts`); a success ends it. Its deliveries start in the activity meanwhile.
    posts_failing_since: datetime | None = None

    def after(self, outcome: DeliveryOutcome) -> EndpointHealth:
        if outcome.succeeded:
            return EndpointHealth()
        if outcome.delivery_id in self.failed_deliveries:
            return self
        # Keeps the mark of failing POSTs, which only a success ends.
        return self.model_copy(
            update={
                "failed_deliveries": [*self.failed_deliveries, outcome.delivery_id][-max(outcome.policy.failures, 1) :],
                "failing_since": self.failing_since or outcome.at,
            }
        )

    def changed_by(self, outcome: DeliveryOutcome) -> bool:
        """Whether the registry's answer to `outcome` could differ from this health's: a success
        ends a run of failures; a failure counts until the run holds `policy.failures`, and from
        then on only the one that finds the run long enough to disable the endpoint matters.
        Reporting the others would rewrite the registry on every failure of an endpoint that is
        down for hours, each time sending every reader of it back for a fresh copy."""
        if outcome.succeeded:
            return bool(self.failed_deliveries) or self.posts_failing_since is not None
        if outcome.policy.failures == 0:
            return False  # the rule is off: no failure is counted
        if outcome.delivery_id in self.failed_deliveries:
            return False
        if len(self.failed_deliveries) < max(outcome.policy.failures, 1):
            return True
        return self.after(outcome).should_disable(outcome.policy, outcome.at)

    def begins_failing_posts(self, failed: Attempt) -> bool:
        """Whether a POST begins a run of failed POSTs that looks like an outage, none being
        known: it failed and was a retry (the delivery's POST before it failed too). A working
        receiver's one-off error, a refused connection or a timeout included, does not, so a
        flaky endpoint does not change its registry, sending every reader of it back for a
        fresh copy, twice for each error (once marked, once cleared by a success)."""
        return self.posts_failing_since is None and not failed.succeeded and failed.number > 1

    def should_disable(self, policy: HealthPolicy, now: datetime) -> bool:
        return (
            policy.failures > 0
            and len(self.failed_deliveries) >= policy.failures
            and self.failing_since is not None
            and (now - self.failing_since).total_seconds() >= policy.seconds
        )


class HealthPolicy(BaseModel):
    """When the worker's settings disable an endpoint: `failures` in a row (0 = never), over `seconds`."""

    failures: int
    seconds: float


class DeliveryOutcome(BaseModel):
    """A delivery's end, as it bears on its endpoint's health."""

    endpoint_id: str
    delivery_id: str
    succeeded: bool
    at: datetime
    policy: HealthPolicy
    url: str | None = None  # where the POST went (None: sent before reports named it)


class Endpoint(EndpointSpec):
    """A registered endpoint, as the registry stores it (secrets sealed; plain in registries written before)."""

    id: str
    created_at: datetime
    updated_at: datetime
    signing_secrets: list[SigningSecret] = []
    health: EndpointHealth = EndpointHealth()
    # Set by a receiver's 429, 502, 503 or 504: no POST to the endpoint before then.
    throttled_until: datetime | None = None

    @property
    def spec(self) -> EndpointSpec:
        return EndpointSpec.model_validate(self.model_dump(include=set(EndpointSpec.model_fields)))

    def subscription(self) -> Subscription:
        return Subscription(endpoint_id=self.id, url=self.url, retry=self.retry, ordering=self.ordering)

    def starts_in_activity(self, now: datetime) -> bool:
        """See `starts_in_activity`."""
        failing = bool(self.health.failed_deliveries) or self.health.posts_failing_since is not None
        return starts_in_activity(self.rate_limit, self.ordering, failing, self.throttled_until, now)

    def masked(self) -> EndpointView:
        auth = self.auth and MaskedAuth(username=self.auth.username)
        header = self.custom_header and MaskedHeader(key=self.custom_header.key)
        signing = None
        if self.signing_secrets:
            current = max(self.signing_secrets, key=lambda s: s.created_at)
            older = [s.expires_at for s in self.signing_secrets if s.expires_at is not None]
            signing = SigningView(
                scheme=current.scheme,
                public_key=current.public_key,
                secret_created_at=current.created_at,
                previous_secret_expires_at=max(older, default=None),
            )
        return EndpointView(
            **self.model_dump(exclude={"auth", "custom_header", "signing_secrets", "health"}),
            auth=auth,
            custom_header=header,
            signing=signing,
            disabled_reason=self.health.disabled_reason if self.disabled else None,
            failed_deliveries_in_a_row=len(self.health.failed_deliveries),
            posts_failing_since=self.health.posts_failing_since,
        )


class MaskedAuth(BaseModel):
    username: str
    password: str = MASK


class MaskedHeader(BaseModel):
    key: str
    value: str = MASK


class SigningView(BaseModel):
    """That requests are signed, how and since when; an HMAC secret is shown once, at rotation, and a
    private key never."""

    scheme: Scheme = Scheme.HMAC
    public_key: str | None = None  # v1a: whpk_…, what receivers verify with
    secret_created_at: datetime
    previous_secret_expires_at: datetime | None


class EndpointView(BaseModel):
    """An endpoint as every API answer shows it: the secrets never leave in clear."""

    id: str
    url: str
    events: list[EventType]
    auth: MaskedAuth | None
    retry: RetrySettings
    custom_header: MaskedHeader | None
    description: str
    signing: SigningView | None = None
    disabled: bool
    disabled_reason: str | None
    failed_deliveries_in_a_row: int
    # Since when its POSTs fail like an outage (a delivery's retry failed too); null
    # once one succeeds. Its deliveries make every attempt in the retries' activity meanwhile.
    posts_failing_since: datetime | None = None
    rate_limit: RateLimit | None = None
    ordering: Ordering = Ordering.NONE
    # When the receiver last asked us to slow down (429, 502, 503, 504): nothing is POSTed before.
    throttled_until: datetime | None = None
    created_at: datetime
    updated_at: datetime

    def as_of(self, now: datetime) -> EndpointView:
        """The view at `now`: a previous secret whose grace has ended signs nothing more, so it
        is not shown as if it still did (the registry keeps it until its next change)."""
        signing = self.signing
        if signing is None or signing.previous_secret_expires_at is None or signing.previous_secret_expires_at > now:
            return self
        return self.model_copy(update={"signing": signing.model_copy(update={"previous_secret_expires_at": None})})


def starts_in_activity(
    rate_limit: RateLimit | None,
    ordering: Ordering,
    failing: bool,
    throttled_until: datetime | None,
    now: datetime,
) -> bool:
    """Whether a delivery to an endpoint starting now makes all its attempts in the retries'
    activity, the first too (DeliveryInput.attempts_in_activity), rather than a first attempt
    inside its workflow task. The local attempt pays only when it is likely to POST at once
    and succeed. One to a rate-limited or ordered endpoint would only hand over (it may not
    ask the endpoint's schedule); one held by a receiver's pause would only wait; one to a
    `failing` endpoint (its last delivery failed, or its POSTs fail like an outage) is likely
    to fail too, and a local failure waits for the retries on a timer (a billed Action), where
    the activity's retry policy waits for free."""
    paused = throttled_until is not None and throttled_until > now
    return rate_limit is not None or ordering == Ordering.FIFO or failing or paused


class Subscription(BaseModel):
    """What ingest needs to know about a subscribed endpoint (no secrets)."""

    endpoint_id: str
    url: str
    retry: RetrySettings
    ordering: Ordering = Ordering.NONE


class RegistrySnapshot(BaseModel):
    """Every endpoint of an account, secrets included (sealed), as of one version of its registry."""

    version: int
    endpoints: dict[str, Endpoint]

    def subscriptions(self, event: EventType) -> list[Subscription]:
        """The endpoints an event of this type goes to, oldest first."""
        endpoints = sorted(self.endpoints.values(), key=lambda e: e.created_at)
        return [e.subscription() for e in endpoints if event in e.events]
