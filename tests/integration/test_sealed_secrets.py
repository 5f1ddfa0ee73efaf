"""No query answers a secret: credentials are sealed by the API, opened only by the worker at send time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.endpoints import BasicAuth, CustomHeader, Endpoint, EndpointSpec
from domain.ids import first_connection_id, flow_workflow_id, registry_workflow_id
from domain.signing import SigningSecret, new_secret, public_key_of
from tests.contract import CONTRACT_ORDER
from tests.integration.helpers import (
    api_with,
    codec_decode,
    codec_with,
    create_endpoint,
    decoded_data,
    decoded_text,
    delivery_outcome,
    key_forms,
    post_event,
    raw_query,
    signing_private_keys,
    tracking_event,
)
from tests.waiting import eventually
from worker import WORKFLOWS
from workflows.endpoint_registry import INVALID, EndpointRegistryWorkflow
from workflows.registry_messages import RegistryState

PASSWORD, HEADER_VALUE = "pw-Query-4471", "hv-Query-8812"
OPERATOR = {"Authorization": "Bearer token-operator"}


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


async def test_no_query_of_any_workflow_answers_a_secret_even_decoded_by_an_operator(
    api, client, receiver, settings, temporal_address
):
    url = receiver.url()
    endpoint = await create_endpoint(
        api,
        url,
        auth={"username": "shop", "password": PASSWORD},
        custom_header={"key": "X-Shop-Token", "value": HEADER_VALUE},
        retry={"enabled": True, "max_retries": 1},
        ordering="fifo",  # so the endpoint has a flow-control workflow to ask too
    )
    rotated = [(await api.post(f"/v1/endpoints/{endpoint['id']}/secret")).json()["secret"] for _ in range(2)]
    key_pair = (await api.post(f"/v1/endpoints/{endpoint['id']}/secret", json={"scheme": "v1a"})).json()
    accepted = await post_event(api, tracking_event())
    [delivery] = accepted["deliveries"]
    await delivery_outcome(client, delivery["id"])
    recovery = await api.post(f"/v1/endpoints/{endpoint['id']}/recover", json={"since": _an_hour_ago()})
    assert recovery.status_code == 200, recovery.text

    async def recoveries() -> list[str]:
        return [w.id async for w in client.list_workflows(f'WorkflowId STARTS_WITH "recovery/{endpoint["id"]}/"')]

    # The search index shows the recovery some time after it ran.
    [recovery_run] = await eventually(recoveries, lambda ids: len(ids) == 1, what="the recovery listed")
    sent = receiver.requests(url)[-1].headers
    assert sent["x-shop-token"] == HEADER_VALUE and sent["authorization"] == _basic("shop", PASSWORD)
    # Both HMAC secrets and the Ed25519 key, opened at send time.
    assert [s.split(",")[0] for s in sent["webhook-signature"].split()] == ["v1a", "v1", "v1"]
    [private_key] = await signing_private_keys(client, settings, "default", endpoint["id"])
    assert public_key_of(private_key) == key_pair["public_key"]  # the key looked for below is the one that signs

    # One run of every workflow type, and the arguments of the queries that take one.
    runs = {
        registry_workflow_id("default"): "EndpointRegistryWorkflow",
        delivery["id"]: "DeliveryWorkflow",
        first_connection_id(endpoint["id"]): "DeliveryWorkflow",
        recovery_run: "RecoveryWorkflow",
        flow_workflow_id("default", endpoint["id"]): "EndpointFlowWorkflow",
    }
    arguments = {"endpoint": [endpoint["id"]], "head": [CONTRACT_ORDER["order_id"]]}
    secrets = [PASSWORD, HEADER_VALUE, *rotated, _basic("shop", PASSWORD)]
    answers: dict[tuple[str, str], str] = {}
    data: dict[tuple[str, str], bytes] = {}
    async with codec_with(settings.model_copy(update={"operator_token": SecretStr("token-operator")})) as codec:
        for workflow_id in runs:
            # Each run says which queries it answers (Temporal's built-in metadata query) ...
            metadata = await raw_query(temporal_address, workflow_id, "__temporal_workflow_metadata")
            definition = json.loads(decoded_text(await codec_decode(codec, metadata, OPERATOR)))["definition"]
            # ... and each answer, as the worker sent it, is read through the codec with the operator's token.
            for query in (q["name"] for q in definition["queryDefinitions"]):
                answer = await raw_query(temporal_address, workflow_id, query, *arguments.get(query, []))
                decoded = await codec_decode(codec, answer, OPERATOR)
                answers[workflow_id, query] = decoded_text(decoded)
                data[workflow_id, query] = b"\n".join(decoded_data(decoded))

    assert set(runs.values()) == {w.__name__ for w in WORKFLOWS}  # every workflow type was asked
    registry_queries = {q for w, q in answers if w == registry_workflow_id("default")}
    assert {"endpoints", "endpoint", "snapshot"} <= registry_queries
    leaks = {key: [s for s in secrets if s in text] for key, text in answers.items()}
    # The private key in every spelling, raw bytes included; its public key may show.
    for key, payload in data.items():
        leaks[key] += [f"private key ({name})" for name, form in key_forms(private_key).items() if form in payload]
    assert {key: found for key, found in leaks.items() if found} == {}
    # The answers were decoded: the snapshot holds the credentials, sealed.
    snapshot = json.loads(answers[registry_workflow_id("default"), "snapshot"])
    stored = snapshot["endpoints"][endpoint["id"]]
    assert stored["custom_header"]["key"] == "X-Shop-Token" and set(stored["auth"]["password"]) == {
        "key_id",
        "ciphertext",
    }
    assert all(set(s["secret"]) == {"key_id", "ciphertext"} for s in stored["signing_secrets"])
    assert [(s["scheme"], s["public_key"]) for s in stored["signing_secrets"]][-1] == ("v1a", key_pair["public_key"])


async def test_the_api_takes_secrets_as_text_only(api, receiver):
    body = {
        "url": receiver.url(),
        "events": ["ORDER_SHIPPED"],
        "auth": {"username": "shop", "password": {"key_id": "forged", "ciphertext": "AAAA"}},
    }

    refused = await api.post("/v1/endpoints", json=body)
    # An outside probe: any other object was refused by naming the sealed form's fields.
    other = body | {"custom_header": {"key": "X-Shop", "value": {"x": "y"}}, "auth": None}
    refused_other = await api.post("/v1/endpoints", json=other)

    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "auth.password", "message": "must be text"}]
    assert refused_other.status_code == 422
    assert refused_other.json()["errors"] == [{"field": "custom_header.value", "message": "must be text"}]
    assert (await api.get("/v1/endpoints")).json() == []


async def test_the_registry_refuses_a_secret_in_clear_from_any_client(api, client, receiver):
    """A client without the secrets key (an older API, a script) cannot put a secret in clear into the state."""
    await create_endpoint(api, receiver.url())  # the registry runs
    handle = client.get_workflow_handle_for(EndpointRegistryWorkflow.run, registry_workflow_id("default"))
    spec = EndpointSpec(
        url=receiver.url(),
        events=["ORDER_SHIPPED"],
        auth={"username": "shop", "password": PASSWORD},
        custom_header={"key": "X-Shop-Token", "value": HEADER_VALUE},
    )

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(EndpointRegistryWorkflow.create_endpoint, spec)

    assert isinstance(refused.value.cause, ApplicationError) and refused.value.cause.type == INVALID
    assert {p["field"] for p in refused.value.cause.details[0]} == {"auth.password", "custom_header.value"}
    assert len(await handle.query(EndpointRegistryWorkflow.endpoints)) == 1


def _signed_with(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return headers["webhook-signature"] == expected


async def test_secrets_stored_in_clear_before_sealing_are_still_sent_then_sealed_in_place(
    settings, worker, client, receiver, temporal_address
):
    account, url, now, signing_secret = "legacy", receiver.url(), datetime.now(UTC), new_secret()
    legacy = Endpoint(
        id="ep_legacy0000000000001",
        url=url,
        events=["TRACKING_UPDATE"],
        auth=BasicAuth(username="shop", password=PASSWORD),
        custom_header=CustomHeader(key="X-Shop-Token", value=HEADER_VALUE),
        signing_secrets=[SigningSecret(secret=signing_secret, created_at=now)],
        created_at=now,
        updated_at=now,
    )
    # A registry as the previous release continued it as new: its state holds the secrets in clear.
    await client.start_workflow(
        EndpointRegistryWorkflow.run,
        RegistryState(account=account, endpoints={legacy.id: legacy}, version=3),
        id=registry_workflow_id(account),
        task_queue=settings.task_queue,
    )
    merchant = {"Authorization": "Bearer token-legacy"}
    operator = settings.model_copy(update={"operator_token": SecretStr("token-operator")})
    async with (
        api_with(settings.model_copy(update={"api_tokens": {account: SecretStr("token-legacy")}})) as api,
        codec_with(operator) as codec,
    ):

        async def snapshot() -> str:
            answer = await raw_query(temporal_address, registry_workflow_id(account), "snapshot")
            return decoded_text(await codec_decode(codec, answer, OPERATOR))

        before = await snapshot()
        deliveries = []
        for _ in range(2):  # the first reads the registry in clear (and seals it), the second reads it sealed
            accepted = await api.post("/v1/events", json=tracking_event(), headers=merchant)
            [delivery] = accepted.json()["deliveries"]
            deliveries.append(await delivery_outcome(client, delivery["id"]))
            after = await eventually(snapshot, lambda text: PASSWORD not in text, what="the registry sealed")
        listed = await api.get("/v1/endpoints", headers=merchant)

    assert PASSWORD in before and HEADER_VALUE in before  # the state this release inherits
    assert [d.result for d in deliveries] == ["success", "success"]
    for request in receiver.requests(url):
        assert request.headers["authorization"] == _basic("shop", PASSWORD)
        assert request.headers["x-shop-token"] == HEADER_VALUE
        assert _signed_with(signing_secret, request.headers, request.body)
    assert [s for s in (PASSWORD, HEADER_VALUE, signing_secret) if s in after] == []
    sealed = json.loads(after)["endpoints"][legacy.id]
    assert set(sealed["auth"]["password"]) == set(sealed["signing_secrets"][0]["secret"]) == {"key_id", "ciphertext"}
    # Not a merchant's change: the endpoint reads as before.
    assert [(e["id"], e["updated_at"]) for e in listed.json()] == [(legacy.id, now.isoformat().replace("+00:00", "Z"))]


def _an_hour_ago() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()
