"""Typed access to an account's endpoint registry workflow, for the API and the activities."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.workflow import UpdateMethodMultiParam

from domain.endpoints import (
    FRESH_SECONDS,
    BasicAuth,
    CustomHeader,
    DeliveryOutcome,
    Endpoint,
    EndpointPatch,
    EndpointSpec,
    EndpointView,
    RegistrySnapshot,
)
from domain.ids import registry_workflow_id
from domain.secrets import Sealed, SecretField
from domain.signing import SEALED_AS, NewSecret
from infra.secrets import SecretBox
from infra.temporal import UpdateSlots, is_not_found, or_none, update_kept, update_with_start
from services.flow import CONTROL_PRIORITY
from workflows.endpoint_registry import INVALID, NOT_FOUND, NOTHING_TO_SEAL, VERSION_MEMO, EndpointRegistryWorkflow
from workflows.registry_messages import (
    EndpointEdit,
    EndpointGone,
    EndpointPostsFailing,
    EndpointThrottle,
    PlainSecretsSealed,
    PlainSecretsSealing,
    RegistryState,
    SecretRotation,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
A = TypeVar("A")

_READS_IN_TIME_TRIES = 3


class EndpointNotFound(Exception):
    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"endpoint {endpoint_id} not found")
        self.endpoint_id = endpoint_id


class EndpointRejected(Exception):
    """The registry's validator refused a change; `problems` name the fields."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        self.problems = problems


@dataclass
class _Kept:
    snapshot: RegistrySnapshot
    confirmed_at: float  # monotonic: when a describe last found no newer version


class SnapshotCache:
    """The registry snapshots one process read last, by account: one per process.

    A snapshot is reused while the registry's version (in its memo, read by a
    describe that the server answers alone) is unchanged; a query, which needs a
    worker to answer it, runs only after a change. Ingest and every delivery
    attempt read the registry, and changes are rare.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._kept: dict[str, _Kept] = {}
        self._clock = clock
        # account, version -> a read under way: (when it was asked, its answer)
        self._reading: dict[tuple[str, int], asyncio.Future[tuple[float, RegistrySnapshot | None]]] = {}

    async def read_once(
        self, account: str, version: int, read: Callable[[], Awaitable[RegistrySnapshot | None]]
    ) -> RegistrySnapshot | None:
        """Read the registry past `version`, sharing one read among every caller that asks
        for the same account and version meanwhile (a restarted worker's pending deliveries
        all ask at once: one query answers them). Its answer is at least that new, so
        sharing it keeps every reader's view as fresh as the describe it made."""
        key = (account, version)
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._timed(read))
            self._reading[key] = reading
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        # One caller cancelled (its activity timed out) leaves the read to the others.
        asked_at, fresh = await asyncio.shield(reading)
        if fresh is not None:
            self.keep(account, fresh, asked_at)
        return fresh

    async def _timed(
        self, read: Callable[[], Awaitable[RegistrySnapshot | None]]
    ) -> tuple[float, RegistrySnapshot | None]:
        asked_at = self._clock()
        return asked_at, await read()

    def now(self) -> float:
        return self._clock()

    def current(self, account: str, version: int, asked_at: float) -> RegistrySnapshot | None:
        """The snapshot, if it holds `version`, which a describe asked at `asked_at` read."""
        kept = self._kept.get(account)
        if kept is None or kept.snapshot.version < version:
            return None
        kept.confirmed_at = max(kept.confirmed_at, asked_at)
        return kept.snapshot

    def recent(self, account: str, version: int, within: float) -> RegistrySnapshot | None:
        """The snapshot, if it holds `version` and was confirmed current `within` seconds."""
        kept = self._kept.get(account)
        if kept is None or kept.snapshot.version < version or self._clock() - kept.confirmed_at > within:
            return None
        return kept.snapshot

    def keep(self, account: str, snapshot: RegistrySnapshot, asked_at: float) -> None:
        """Keep a snapshot a read asked at `asked_at` returned: the registry was no older then
        (a read's answer is at least as new as the moment it was asked, not as it came back)."""
        kept = self._kept.get(account)
        if kept is None or kept.snapshot.version < snapshot.version:
            self._kept[account] = _Kept(snapshot, asked_at)


class EndpointRegistry:
    """One account's endpoints. Reads see every change accepted before them.

    Secrets given to it (passwords, header values, signing secrets) are sealed
    with `secrets` before they leave this process: the registry keeps, and its
    queries answer, ciphertext only.
    """

    def __init__(
        self,
        client: Client,
        task_queue: str,
        account: str,
        cache: SnapshotCache | None = None,
        secrets: SecretBox | None = None,
        slots: UpdateSlots | None = None,
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._account = account
        self._workflow_id = registry_workflow_id(account)
        self._cache = cache or SnapshotCache()
        self._secrets = secrets
        self._slots = slots or UpdateSlots()

    def _handle(self) -> WorkflowHandle[EndpointRegistryWorkflow, None]:
        return self._client.get_workflow_handle_for(EndpointRegistryWorkflow.run, self._workflow_id)

    async def endpoints(self) -> list[EndpointView]:
        # No registry: no endpoint was ever created for this account.
        views = await or_none(self._handle().query(EndpointRegistryWorkflow.endpoints)) or []
        now = datetime.now(UTC)
        return [view.as_of(now) for view in views]

    async def get(self, endpoint_id: str) -> EndpointView:
        found = await or_none(self._handle().query(EndpointRegistryWorkflow.endpoint, endpoint_id))
        if found is None:
            raise EndpointNotFound(endpoint_id)
        return found.as_of(datetime.now(UTC))

    async def for_delivery(self, endpoint_id: str, seen_version: int | None = None) -> Endpoint | None:
        """The endpoint with its secrets, or None once it is deleted.

        With `seen_version`, the registry version the delivery was accepted
        under, a snapshot at least that new and confirmed current within
        FRESH_SECONDS is used without asking the server: a first attempt
        follows its acceptance closely, and a burst of them costs one describe
        a second instead of one each.
        """
        snapshot = None
        if seen_version is not None:
            snapshot = self._cache.recent(self._account, seen_version, FRESH_SECONDS)
        if snapshot is None:
            snapshot = await self._read_in_time()
        return snapshot.endpoints.get(endpoint_id) if snapshot else None

    async def _read_in_time(self) -> RegistrySnapshot | None:
        """A read answered within FRESH_SECONDS of being asked: a change answers FRESH_SECONDS
        after it was made, so a slower answer may predate a change already answered. Asked
        again, a few times; on a server that slow throughout, the last answer serves."""
        for _ in range(_READS_IN_TIME_TRIES):
            asked_at = self._cache.now()
            snapshot = await self.snapshot()
            if self._cache.now() - asked_at <= FRESH_SECONDS:
                break
        return snapshot

    async def snapshot(self) -> RegistrySnapshot | None:
        """Every endpoint as of now, or None when the account has none yet."""
        asked_at = self._cache.now()
        description = await or_none(self._handle().describe())
        if description is None:
            return None
        version = await description.memo_value(VERSION_MEMO, 0, type_hint=int)
        cached = self._cache.current(self._account, version, asked_at)
        if cached is not None:
            return cached
        return await self._cache.read_once(self._account, version, self._query_snapshot)

    async def _query_snapshot(self) -> RegistrySnapshot | None:
        fresh = await or_none(self._handle().query(EndpointRegistryWorkflow.snapshot))
        if fresh is not None:
            await self._seal_plain_secrets(fresh)
        return fresh

    async def _seal_plain_secrets(self, snapshot: RegistrySnapshot) -> None:
        """A registry written before sealing holds secrets in clear: seal them in place, once.

        Best effort: the snapshot in hand serves the read either way, and the next
        read after a failure tries again.
        """
        if self._secrets is None:
            return
        sealing = PlainSecretsSealing(endpoints={})
        for endpoint in snapshot.endpoints.values():
            auth, header = endpoint.auth, endpoint.custom_header
            sealed = PlainSecretsSealed(
                password=self._seal_if_plain(auth.password if auth else None, "auth.password"),
                header_value=self._seal_if_plain(header.value if header else None, "custom_header.value"),
                signing_secrets={
                    s.created_at.isoformat(): sealed_secret
                    for s in endpoint.signing_secrets
                    if (sealed_secret := self._seal_if_plain(s.secret, SEALED_AS[s.scheme]))
                },
            )
            if sealed != PlainSecretsSealed():
                sealing.endpoints[endpoint.id] = sealed
        if not sealing.endpoints:
            return
        try:
            await self._handle().execute_update(EndpointRegistryWorkflow.seal_plain_secrets, sealing)
            log.info(
                "sealed the secrets registry %s held in clear, of %d endpoints",
                self._workflow_id,
                len(sealing.endpoints),
            )
        except WorkflowUpdateFailedError as err:
            if not (isinstance(err.cause, ApplicationError) and err.cause.type == NOTHING_TO_SEAL):  # a reader did
                log.warning("could not seal the secrets registry %s holds in clear: %s", self._workflow_id, err.cause)
        except RPCError as err:
            log.warning("could not seal the secrets registry %s holds in clear: %s", self._workflow_id, err)

    def _seal_if_plain(self, value: str | Sealed | None, field: SecretField) -> Sealed | None:
        if value is None or isinstance(value, Sealed) or self._secrets is None:
            return None
        return self._secrets.seal(value, self._account, field)

    async def create(self, spec: EndpointSpec) -> EndpointView:
        spec = spec.model_copy(update=self._sealed(spec.auth, spec.custom_header))

        def send(id: str) -> Awaitable[EndpointView]:
            start = WithStartWorkflowOperation(  # one per call: an operation is used once
                EndpointRegistryWorkflow.run,
                RegistryState(account=self._account),
                id=self._workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=f"Endpoint registry of account {self._account}",
                priority=CONTROL_PRIORITY,  # every attempt may wait for it to answer a query
            )
            return update_with_start(self._client, EndpointRegistryWorkflow.create_endpoint, spec, start=start, id=id)

        return await self._update(send, endpoint_id=None)

    async def update(self, endpoint_id: str, patch: EndpointPatch) -> EndpointView:
        patch = patch.model_copy(update=self._sealed(patch.auth, patch.custom_header))
        edit = EndpointEdit(endpoint_id=endpoint_id, patch=patch)
        changed = await self._change(EndpointRegistryWorkflow.update_endpoint, edit, endpoint_id)
        return changed.as_of(datetime.now(UTC))

    async def rotate_signing_secret(self, endpoint_id: str, new: NewSecret, grace_seconds: float) -> EndpointView:
        rotation = SecretRotation(
            endpoint_id=endpoint_id,
            secret=self._seal(new.secret, SEALED_AS[new.scheme]),
            grace_seconds=grace_seconds,
            scheme=new.scheme,
            public_key=new.public_key,
        )
        return await self._change(EndpointRegistryWorkflow.rotate_signing_secret, rotation, endpoint_id)

    async def stop_signing(self, endpoint_id: str) -> EndpointView:
        return await self._change(EndpointRegistryWorkflow.stop_signing, endpoint_id, endpoint_id)

    async def record_outcome(self, outcome: DeliveryOutcome) -> None:
        await self._handle().signal(EndpointRegistryWorkflow.record_outcome, outcome)

    async def gone(self, endpoint_id: str, delivery_id: str, at: datetime, url: str) -> None:
        """The receiver at `url` answered 410 Gone (ignored if the endpoint has moved since)."""
        gone = EndpointGone(endpoint_id=endpoint_id, delivery_id=delivery_id, at=at, url=url)
        await self._handle().signal(EndpointRegistryWorkflow.gone, gone)

    async def throttle(self, endpoint_id: str, until: datetime, url: str) -> None:
        """The receiver at `url` asked for a pause (ignored if the endpoint has moved since)."""
        throttle = EndpointThrottle(endpoint_id=endpoint_id, until=until, url=url)
        await self._handle().signal(EndpointRegistryWorkflow.throttle, throttle)

    async def posts_failing(self, endpoint_id: str, at: datetime, url: str) -> None:
        """A retry to `url` at `at` failed too (ignored if the endpoint has moved since)."""
        failing = EndpointPostsFailing(endpoint_id=endpoint_id, at=at, url=url)
        await self._handle().signal(EndpointRegistryWorkflow.posts_failing, failing)

    async def delete(self, endpoint_id: str) -> None:
        await self._change(EndpointRegistryWorkflow.delete_endpoint, endpoint_id, endpoint_id)

    def _sealed(self, auth: BasicAuth | None, header: CustomHeader | None) -> dict[str, BaseModel]:
        """The fields to replace so that a spec or patch carries its secrets sealed."""
        sealed: dict[str, BaseModel] = {}
        if auth is not None:
            sealed["auth"] = auth.model_copy(update={"password": self._seal(auth.password, "auth.password")})
        if header is not None:
            sealed["custom_header"] = header.model_copy(
                update={"value": self._seal(header.value, "custom_header.value")}
            )
        return sealed

    def _seal(self, value: str | Sealed, field: SecretField) -> Sealed:
        if isinstance(value, Sealed):  # only this process seals: what a caller sends is text
            raise EndpointRejected([{"field": field, "message": "must be text"}])
        if self._secrets is None:
            raise RuntimeError("this registry client was given no SecretBox: it cannot store secrets")
        return self._secrets.seal(value, self._account, field)

    async def _change(
        self,
        update: UpdateMethodMultiParam[[EndpointRegistryWorkflow, A], T],
        arg: A,
        endpoint_id: str,
    ) -> T:
        """Change one endpoint through the registry update `update`, answered once no worker
        trusts a copy of the registry from before it: a first attempt may use a snapshot for
        FRESH_SECONDS after the read that confirmed it was asked, so from the answer on every POST
        that begins reads the change (CONTRACT §1: a deleted endpoint receives nothing more once
        the call returned)."""
        done = await self._update(lambda id: self._handle().execute_update(update, arg, id=id), endpoint_id)
        await asyncio.sleep(FRESH_SECONDS)
        return done

    async def _update(self, send: Callable[..., Awaitable[T]], endpoint_id: str | None) -> T:
        """Send a registry update (`send(id=…)`) in one of this process's slots, until the
        server keeps it, turning its refusals into the API's errors."""
        try:
            async with self._slots.held(self._workflow_id):
                return await update_kept(send)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == NOT_FOUND:
                raise EndpointNotFound(endpoint_id or "") from None
            if isinstance(cause, ApplicationError) and cause.type == INVALID:
                raise EndpointRejected(list(cause.details[0])) from None
            raise
        except RPCError as err:
            if endpoint_id is not None and is_not_found(err):
                raise EndpointNotFound(endpoint_id) from None
            raise
