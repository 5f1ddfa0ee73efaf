"""Endpoint configuration as an entity workflow: one per account (`domain.ids.registry_workflow_id`).

Updates change it (their validators reject bad input before anything is written,
so the history is an audit trail of accepted changes only); queries read it, so
the API always sees the latest accepted state.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.delivery import event_deliveries, first_connection
    from domain.endpoints import (
        BasicAuth,
        CustomHeader,
        DeliveryOutcome,
        Endpoint,
        EndpointHealth,
        EndpointSpec,
        EndpointView,
        RegistrySnapshot,
    )
    from domain.events import EventType
    from domain.notices import EndpointDisabledNotice, notice_id
    from domain.problems import field_errors
    from domain.secrets import Sealed
    from domain.signing import Scheme, SigningSecret, is_public_key
    from workflows.delivery import start_delivery_child
    from workflows.registry_messages import (
        EndpointEdit,
        EndpointGone,
        EndpointPostsFailing,
        EndpointThrottle,
        PlainSecretsSealing,
        RegistryState,
        SecretRotation,
        sealed_where_plain,
    )

MAX_ENDPOINTS_PER_ACCOUNT = 100

# Patches of EndpointRegistryWorkflow's commands since v0.2.0 (see README, "Releasing").
ENDPOINT_DISABLED_NOTICE = "endpoint-disabled-notice"
# A create answers in the workflow task that accepts it; its first connection starts beside
# it. Awaiting the child's start made the answer wait for the next task, and a task that timed
# out under load then left the worker's order of answers unlike replay's: the registry failed
# every task after it (an SDK fault), and its account could change nothing.
CREATES_END_WHERE_ACCEPTED = "creates-end-where-accepted"
# A report that changes no endpoint leaves the version, so readers keep their snapshots.
UNCHANGED_REPORTS_KEEP_VERSION = "unchanged-reports-keep-version"
# A report from the URL an endpoint had before an edit is not about its receiver now, and a
# new URL starts a fresh failure count.
OLD_URLS_REPORTS_IGNORED = "old-urls-reports-ignored"
# An edit that changes nothing (`PATCH {}`, or fields as they are) leaves the endpoint's
# updated_at and the version alone: it answers what is there. Credentials sent again are
# sealed anew (another nonce), so they count as a change.
UNCHANGED_EDITS_KEEP_VERSION = "unchanged-edits-keep-version"
# A rotation keeps at most PREVIOUS_SECRETS_KEPT earlier secrets signing through their grace,
# the newest: every one signs every POST, and hundreds of rotations in a day made a
# `webhook-signature` header receivers refused (74 KB after 800: an outside probe).
PREVIOUS_SECRETS_CAPPED = "previous-secrets-capped"
PREVIOUS_SECRETS_KEPT = 2
# A registry continues as new once its history holds HISTORY_EVENTS_KEPT events, long before
# the server suggests it (thousands): one the worker's cache let go replays its whole history
# in its next task, and 5,600 events took 12-21 s on a loaded worker, past the task's 10 s
# timeout, so it answered no one (an outside run, 2026-12-01). Asked once, as a run begins.
SHORT_HISTORIES = "short-histories"
HISTORY_EVENTS_KEPT = 1_000
# A worker's `posts_failing` signal marks the endpoint. Asked in that handler only: a registry
# that received the signal on a worker without the handler dropped it, and replays so (and,
# as Temporal keeps a patch's first answer for the run, drops later ones until it continues
# as new, within HISTORY_EVENTS_KEPT events: a mixed deploy's cost, not an error).
POSTS_FAILING_MARKED = "posts-failing-marked"

NOT_FOUND = "EndpointNotFound"
INVALID = "InvalidEndpoint"
NOTHING_TO_SEAL = "NothingToSeal"


# The memo key of the registry's version, which counts its changes: readers that
# kept a snapshot learn from one describe whether it is still current.
VERSION_MEMO = "version"


def _invalid(err: ValidationError) -> ApplicationError:
    problems = field_errors(err.errors(include_input=False, include_url=False))
    return ApplicationError("invalid endpoint", problems, type=INVALID, non_retryable=True)


def _require_sealed(values: dict[str, str | Sealed | None]) -> None:
    """Refuses a change carrying a secret in clear: the registry's state and answers hold none.

    (Validators do not run on replay, so histories written before sealing still replay.)
    """
    plain = [field for field, value in values.items() if value is not None and not isinstance(value, Sealed)]
    if plain:
        problems = [{"field": field, "message": "must arrive sealed (WEBHOOKS_SECRETS_KEY)"} for field in plain]
        raise ApplicationError("secrets in clear", problems, type=INVALID, non_retryable=True)


def _require_public_key(rotation: SecretRotation) -> None:
    """A v1a key pair shows its public key; an HMAC secret has none."""
    if rotation.scheme is Scheme.ED25519:
        wrong = rotation.public_key is None or not is_public_key(rotation.public_key)
        message = "must be whpk_ and the base64 of a 32-byte Ed25519 public key"
    else:
        wrong, message = rotation.public_key is not None, "only a v1a key pair has one"
    if wrong:
        problems = [{"field": "public_key", "message": message}]
        raise ApplicationError("invalid public key", problems, type=INVALID, non_retryable=True)


def _secrets_of(auth: BasicAuth | None, header: CustomHeader | None) -> dict[str, str | Sealed | None]:
    return {
        "auth.password": auth.password if auth else None,
        "custom_header.value": header.value if header else None,
    }


@workflow.defn
class EndpointRegistryWorkflow:
    @workflow.init
    def __init__(self, state: RegistryState) -> None:
        self._account = state.account
        self._endpoints: dict[str, Endpoint] = dict(state.endpoints)
        self._version = state.version
        self._starting: set[asyncio.Task[None]] = set()  # first connections not yet started

    @workflow.run
    async def run(self, state: RegistryState) -> None:
        # Lives as long as the account; continue-as-new keeps its history short.
        short = workflow.patched(SHORT_HISTORIES)

        def history_long() -> bool:
            info = workflow.info()
            return info.is_continue_as_new_suggested() or (
                short and info.get_current_history_length() >= HISTORY_EVENTS_KEPT
            )

        await workflow.wait_condition(
            lambda: history_long() and workflow.all_handlers_finished() and not self._starting
        )
        workflow.continue_as_new(
            RegistryState(account=self._account, endpoints=self._endpoints, version=self._version),
            memo={VERSION_MEMO: self._version},
        )

    def _changed(self) -> None:
        """Every change goes through here, so no reader keeps a stale snapshot."""
        self._version += 1
        workflow.upsert_memo({VERSION_MEMO: self._version})

    # -- reads -------------------------------------------------------------

    @workflow.query
    def endpoints(self) -> list[EndpointView]:
        return [e.masked() for e in sorted(self._endpoints.values(), key=lambda e: e.created_at)]

    @workflow.query
    def endpoint(self, endpoint_id: str) -> EndpointView | None:
        found = self._endpoints.get(endpoint_id)
        return found.masked() if found else None

    @workflow.query
    def snapshot(self) -> RegistrySnapshot:
        """With the secrets, sealed: for ingest and the delivery activity, which keep it while it is current."""
        return RegistrySnapshot(version=self._version, endpoints=self._endpoints)

    # -- changes -----------------------------------------------------------

    @workflow.update
    async def create_endpoint(self, spec: EndpointSpec) -> EndpointView:
        now = workflow.now()
        endpoint_id = "ep_" + workflow.uuid4().hex[:20]
        endpoint = Endpoint(**spec.model_dump(), id=endpoint_id, created_at=now, updated_at=now)
        self._endpoints[endpoint_id] = endpoint
        self._changed()
        # First connection: a new endpoint always receives an ORDER_SHIPPED sample.
        first = start_delivery_child(
            first_connection(self._account, endpoint_id, endpoint.url, endpoint.retry.max_attempts)
        )
        if workflow.patched(CREATES_END_WHERE_ACCEPTED):
            # The API starts the same delivery if this start is not done when it answers.
            starting = asyncio.create_task(first)
            self._starting.add(starting)
            starting.add_done_callback(self._starting.discard)
        else:
            await first
        return endpoint.masked()

    @create_endpoint.validator
    def _validate_create(self, spec: EndpointSpec) -> None:
        _require_sealed(_secrets_of(spec.auth, spec.custom_header))
        if len(self._endpoints) >= MAX_ENDPOINTS_PER_ACCOUNT:
            raise ApplicationError(
                f"an account can have at most {MAX_ENDPOINTS_PER_ACCOUNT} endpoints",
                [{"field": "url", "message": f"at most {MAX_ENDPOINTS_PER_ACCOUNT} endpoints per account"}],
                type=INVALID,
                non_retryable=True,
            )

    @workflow.update
    def update_endpoint(self, edit: EndpointEdit) -> EndpointView:
        current = self._endpoints[edit.endpoint_id]
        spec = edit.patch.apply_to(current.spec)
        if spec == current.spec and workflow.patched(UNCHANGED_EDITS_KEEP_VERSION):
            return current.masked()
        updated = Endpoint(
            **spec.model_dump(),
            id=current.id,
            created_at=current.created_at,
            updated_at=workflow.now(),
            signing_secrets=current.signing_secrets,
            # Re-enabling starts the count afresh, as a new receiver does; disabling by hand keeps it.
            health=EndpointHealth() if self._fresh_count(current, spec) else current.health,
            # A pause was asked for by the receiver at the old URL, not by the new one.
            throttled_until=current.throttled_until if spec.url == current.url else None,
        )
        self._endpoints[edit.endpoint_id] = updated
        self._changed()
        return updated.masked()

    @staticmethod
    def _fresh_count(current: Endpoint, spec: EndpointSpec) -> bool:
        if current.disabled and not spec.disabled:
            return True
        return spec.url != current.url and not spec.disabled and workflow.patched(OLD_URLS_REPORTS_IGNORED)

    @staticmethod
    def _from_old_url(endpoint: Endpoint, url: str | None) -> bool:
        """Whether a report came from a URL the endpoint no longer has (a POST in flight when
        it was edited): its receiver's answer is not the new receiver's."""
        return url is not None and url != endpoint.url and workflow.patched(OLD_URLS_REPORTS_IGNORED)

    @update_endpoint.validator
    def _validate_update(self, edit: EndpointEdit) -> None:
        current = self._require(edit.endpoint_id)
        _require_sealed(_secrets_of(edit.patch.auth, edit.patch.custom_header))
        try:
            edit.patch.apply_to(current.spec)
        except ValidationError as err:
            raise _invalid(err) from None

    @workflow.signal
    async def record_outcome(self, outcome: DeliveryOutcome) -> None:
        """A delivery ended: count it in its endpoint's health, and disable the endpoint if it is time."""
        endpoint = self._endpoints.get(outcome.endpoint_id)
        if endpoint is None or self._from_old_url(endpoint, outcome.url):
            return
        health = endpoint.health.after(outcome)
        disabled = endpoint.disabled
        if disabled:  # by hand, by a 410 or by this rule: the reason stays what it was
            health = health.model_copy(update={"disabled_reason": endpoint.health.disabled_reason})
        newly_disabled = not disabled and health.should_disable(outcome.policy, outcome.at)
        if newly_disabled:
            disabled = True
            since = health.failing_since.isoformat() if health.failing_since else "?"
            reason = f"{len(health.failed_deliveries)} deliveries failed in a row since {since}"
            health = health.model_copy(update={"disabled_reason": reason})
        updated = endpoint.model_copy(update={"health": health, "disabled": disabled})
        # A failure reported again (a run resumed after its last POST), or a success after a reset.
        if updated == endpoint and workflow.patched(UNCHANGED_REPORTS_KEEP_VERSION):
            return
        self._endpoints[outcome.endpoint_id] = updated
        self._changed()
        if newly_disabled:
            await self._disabled(self._endpoints[outcome.endpoint_id], "health", outcome.delivery_id)

    @workflow.signal
    async def gone(self, gone: EndpointGone) -> None:
        """Disable the endpoint at once; its next deliveries are skipped until it is re-enabled."""
        endpoint = self._endpoints.get(gone.endpoint_id)
        if endpoint is None or endpoint.disabled or self._from_old_url(endpoint, gone.url):
            return
        reason = f"The receiver answered 410 Gone to {gone.delivery_id} at {gone.at.isoformat()}"
        health = endpoint.health.model_copy(update={"disabled_reason": reason})
        self._endpoints[gone.endpoint_id] = endpoint.model_copy(update={"disabled": True, "health": health})
        self._changed()
        await self._disabled(self._endpoints[gone.endpoint_id], "gone", gone.delivery_id)

    async def _disabled(self, endpoint: Endpoint, cause: str, delivery_id: str) -> None:
        """An endpoint was disabled by the service: say so in the worker's log and metrics, and
        tell the account's other endpoints that subscribe (ENDPOINT_DISABLED)."""
        reason = endpoint.health.disabled_reason or cause
        workflow.logger.warning("endpoint %s of account %s disabled: %s", endpoint.id, self._account, reason)
        disabled = workflow.metric_meter().create_counter("webhook_endpoints_disabled", "Endpoints disabled")
        disabled.add(1, {"cause": cause})
        subscribers = sorted(
            (e for e in self._endpoints.values() if e.id != endpoint.id and EventType.ENDPOINT_DISABLED in e.events),
            key=lambda e: e.created_at,
        )
        # Versioned: registries of v0.2.0 disabled endpoints without telling anyone.
        if not subscribers or not workflow.patched(ENDPOINT_DISABLED_NOTICE):
            return
        notice = EndpointDisabledNotice(
            id=notice_id(EventType.ENDPOINT_DISABLED, f"{endpoint.id}/{workflow.now().isoformat()}"),
            event=EventType.ENDPOINT_DISABLED,
            endpoint_id=endpoint.id,
            endpoint_url=endpoint.url,
            reason=reason,
            delivery_id=delivery_id,
            date=int(workflow.now().timestamp()),
        )
        for delivery in event_deliveries(self._account, notice, [e.subscription() for e in subscribers]):
            await start_delivery_child(delivery)

    @workflow.signal
    def throttle(self, throttle: EndpointThrottle) -> None:
        """Extend the endpoint's pause; an earlier end than the one set changes nothing."""
        endpoint = self._endpoints.get(throttle.endpoint_id)
        if endpoint is None or (endpoint.throttled_until and endpoint.throttled_until >= throttle.until):
            return
        if self._from_old_url(endpoint, throttle.url):
            return
        self._endpoints[throttle.endpoint_id] = endpoint.model_copy(update={"throttled_until": throttle.until})
        self._changed()

    @workflow.signal
    def posts_failing(self, failing: EndpointPostsFailing) -> None:
        """Mark the endpoint's POSTs failing, until a delivery to it succeeds (record_outcome):
        its deliveries accepted meanwhile make every attempt in the retries' activity."""
        if not workflow.patched(POSTS_FAILING_MARKED):
            return
        endpoint = self._endpoints.get(failing.endpoint_id)
        if endpoint is None or endpoint.disabled or endpoint.health.posts_failing_since is not None:
            return
        if self._from_old_url(endpoint, failing.url):
            return
        health = endpoint.health.model_copy(update={"posts_failing_since": failing.at})
        self._endpoints[failing.endpoint_id] = endpoint.model_copy(update={"health": health})
        self._changed()

    @workflow.update
    def rotate_signing_secret(self, rotation: SecretRotation) -> EndpointView:
        now = workflow.now()
        current = self._endpoints[rotation.endpoint_id]
        grace_end = now + timedelta(seconds=rotation.grace_seconds)
        kept = [
            s.model_copy(update={"expires_at": min(s.expires_at or grace_end, grace_end)})
            for s in current.signing_secrets
            if s.active_at(now)
        ]
        if len(kept) > PREVIOUS_SECRETS_KEPT and workflow.patched(PREVIOUS_SECRETS_CAPPED):
            kept = sorted(kept, key=lambda s: s.created_at)[-PREVIOUS_SECRETS_KEPT:]
        new = SigningSecret(
            secret=rotation.secret, created_at=now, scheme=rotation.scheme, public_key=rotation.public_key
        )
        updated = current.model_copy(update={"signing_secrets": [*kept, new], "updated_at": now})
        self._endpoints[rotation.endpoint_id] = updated
        self._changed()
        return updated.masked()

    @rotate_signing_secret.validator
    def _validate_rotation(self, rotation: SecretRotation) -> None:
        self._require(rotation.endpoint_id)
        _require_sealed({"secret": rotation.secret})
        _require_public_key(rotation)

    @workflow.update
    def stop_signing(self, endpoint_id: str) -> EndpointView:
        current = self._endpoints[endpoint_id]
        updated = current.model_copy(update={"signing_secrets": [], "updated_at": workflow.now()})
        self._endpoints[endpoint_id] = updated
        self._changed()
        return updated.masked()

    @stop_signing.validator
    def _validate_stop_signing(self, endpoint_id: str) -> None:
        self._require(endpoint_id)

    @workflow.update
    def delete_endpoint(self, endpoint_id: str) -> None:
        del self._endpoints[endpoint_id]
        self._changed()

    @delete_endpoint.validator
    def _validate_delete(self, endpoint_id: str) -> None:
        self._require(endpoint_id)

    @workflow.update
    def seal_plain_secrets(self, sealing: PlainSecretsSealing) -> None:
        """Replaces the secrets a registry written before sealing holds in clear (not a merchant's change)."""
        for endpoint_id, sealed in sealing.endpoints.items():
            endpoint = self._endpoints.get(endpoint_id)
            updated = endpoint and sealed_where_plain(endpoint, sealed)
            if updated:
                self._endpoints[endpoint_id] = updated
        self._changed()

    @seal_plain_secrets.validator
    def _validate_sealing(self, sealing: PlainSecretsSealing) -> None:
        # Refused without a write when another reader sealed them first.
        if not any(
            (endpoint := self._endpoints.get(endpoint_id)) and sealed_where_plain(endpoint, sealed)
            for endpoint_id, sealed in sealing.endpoints.items()
        ):
            raise ApplicationError("no secret left in clear", type=NOTHING_TO_SEAL, non_retryable=True)

    def _require(self, endpoint_id: str) -> Endpoint:
        found = self._endpoints.get(endpoint_id)
        if found is None:
            raise ApplicationError(f"endpoint {endpoint_id} not found", type=NOT_FOUND, non_retryable=True)
        return found
