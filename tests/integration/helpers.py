"""What integration tests do over and over: register endpoints, post events, await deliveries."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.query.v1 import WorkflowQuery
from temporalio.api.workflowservice.v1 import QueryWorkflowRequest
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.converter import DataConverter

from api.app import create_app
from api.codec_server import create_codec_app
from domain.flow import FlowState, RateLimit, SlotAnswer, SlotRequest
from domain.ids import registry_workflow_id
from domain.records import DeliveryRecord
from domain.signing import Scheme
from infra.network_guard import Resolver, system_resolver
from infra.tracing import Tracing
from services.deliveries import ended_record
from settings import Settings
from tests.conftest import free_port
from tests.contract import CONTRACT_ORDER, CONTRACT_TRACKING
from tests.receiver import BackgroundServer
from workflows.delivery import DeliveryWorkflow
from workflows.endpoint_flow import EndpointFlowWorkflow, SlotQuestion
from workflows.endpoint_registry import EndpointRegistryWorkflow


def new_event_id() -> str:
    return f"evt-{uuid.uuid4().hex[:12]}"


def tracking_event(event_id: str | None = None, **order: Any) -> dict[str, Any]:
    return {
        "id": event_id or new_event_id(),
        "event": "TRACKING_UPDATE",
        "order": CONTRACT_ORDER | order,
        "tracking": CONTRACT_TRACKING,
    }


async def create_endpoint(api: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    body = {"url": url, "events": ["ORDER_SHIPPED", "ORDER_ERROR", "TRACKING_UPDATE"]} | fields
    response = await api.post("/v1/endpoints", json=body)
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


async def post_event(api: httpx.AsyncClient, event: dict[str, Any]) -> dict[str, Any]:
    response = await api.post("/v1/events", json=event)
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def delivery_outcome(client: Client, delivery_id: str) -> DeliveryRecord:
    """The finished delivery's record, waiting for it to finish."""
    return await ended_record(client.get_workflow_handle_for(DeliveryWorkflow.run, delivery_id))


async def list_ids(api: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await api.get("/v1/deliveries", params=params)
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


@asynccontextmanager
async def api_with(
    settings: Settings, resolve: Resolver = system_resolver, tracing: Tracing | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Another instance of the API, with its own settings, served over HTTP."""
    async with (
        BackgroundServer(create_app(settings, resolve, tracing), free_port()) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
    ):
        yield http


@asynccontextmanager
async def codec_with(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The operators' codec server with these settings, served over HTTP on its own port."""
    async with (
        BackgroundServer(create_codec_app(settings), free_port()) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
    ):
        yield http


async def raw_query(address: str, workflow_id: str, query: str, *args: Any) -> list[Payload]:
    """A query's answer as the worker sent it (encrypted), asked by a client that holds no key."""
    keyless = await Client.connect(address)
    request = QueryWorkflowRequest(
        namespace=keyless.namespace,
        execution=WorkflowExecution(workflow_id=workflow_id),
        query=WorkflowQuery(
            query_type=query, query_args=Payloads(payloads=DataConverter.default.payload_converter.to_payloads(args))
        ),
    )
    response = await keyless.workflow_service.query_workflow(request)
    return list(response.query_result.payloads)


async def codec_decode(
    codec: httpx.AsyncClient, payloads: Sequence[Payload], headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST /codec/decode as the Web UI and the CLI do (Temporal's codec protocol)."""
    body = MessageToJson(Payloads(payloads=payloads))
    sent = {"content-type": "application/json", "x-namespace": "default"} | (headers or {})
    return await codec.post("/codec/decode", content=body, headers=sent)


def decoded_data(answer: httpx.Response) -> list[bytes]:
    """Every payload of a codec answer, its data as bytes (where a raw key would show)."""
    assert answer.status_code == 200, answer.text
    return [base64.b64decode(p.get("data", "")) for p in answer.json()["payloads"]]


def decoded_text(answer: httpx.Response) -> str:
    """Every payload of a codec answer, its data as text."""
    assert answer.status_code == 200, answer.text
    return "\n".join(base64.b64decode(p.get("data", "")).decode(errors="replace") for p in answer.json()["payloads"])


def payloads_in(message: Message) -> list[Payload]:
    """Every payload a message carries, however deep: inputs, results, update arguments, failures, memos."""
    if isinstance(message, Payload):
        return [message]
    found: list[Payload] = []
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE or field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            values = list(value.values())
        elif field.is_repeated:
            values = list(value)
        else:
            values = [value]
        found += [p for v in values if isinstance(v, Message) for p in payloads_in(v)]
    return found


async def decoded_history(address: str, workflow_id: str, codec: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """A workflow's history as an operator reads it through the codec server: every payload decoded."""
    keyless = await Client.connect(address)
    events = [e async for e in keyless.get_workflow_handle(workflow_id).fetch_history_events()]
    payloads = [p for event in events for p in payloads_in(event)]
    return decoded_text(await codec_decode(codec, payloads, headers))


async def raw_history(address: str, workflow_id: str) -> bytes:
    """The history as Temporal stores it, read by a client that holds no key."""
    keyless = await Client.connect(address)
    events = [e.SerializeToString() async for e in keyless.get_workflow_handle(workflow_id).fetch_history_events()]
    return b"".join(events)


async def signing_private_keys(client: Client, settings: Settings, account: str, endpoint_id: str) -> list[str]:
    """The endpoint's v1a private keys (whsk_…), opened as the worker opens them, with WEBHOOKS_SECRETS_KEY:
    what a test needs to look for them where they must not be."""
    registry = client.get_workflow_handle_for(EndpointRegistryWorkflow.run, registry_workflow_id(account))
    snapshot = await registry.query(EndpointRegistryWorkflow.snapshot)
    box = settings.secret_box()
    stored = snapshot.endpoints[endpoint_id].signing_secrets
    return [box.open(s.secret, account, "signing_key") for s in stored if s.scheme is Scheme.ED25519]


def key_forms(private_key: str) -> dict[str, bytes]:
    """Every spelling of a whsk_ private key that would give it away: whsk_ text, its base64 in both
    alphabets, its 32 raw bytes, and their hex."""
    raw = base64.b64decode(private_key.removeprefix("whsk_"))
    return {
        "whsk": private_key.encode(),
        "base64": base64.b64encode(raw),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
        "raw": raw,
        "hex": raw.hex().encode(),
    }


async def ask_schedule(
    client: Client,
    settings: Settings,
    flow_id: str,
    state: FlowState,
    delivery_id: str,
    per_second: float | None = 5,
    order_id: str | None = None,
) -> SlotAnswer:
    """Ask an endpoint's schedule (starting it with `state` if need be) for a slot, as an attempt does."""
    start = WithStartWorkflowOperation(
        EndpointFlowWorkflow.run,
        state,
        id=flow_id,
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    limit = RateLimit(per_second=per_second) if per_second is not None else None
    question = SlotQuestion(request=SlotRequest(delivery_id=delivery_id, rate_limit=limit, order_id=order_id))
    answer: SlotAnswer = await client.execute_update_with_start_workflow(
        EndpointFlowWorkflow.ask, question, start_workflow_operation=start
    )
    return answer
