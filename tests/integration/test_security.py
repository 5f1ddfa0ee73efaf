"""Secrets stay secret and accounts stay apart: raw and decoded histories, tokens, SSRF."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from domain.ids import first_connection_id, registry_workflow_id
from tests.integration.helpers import (
    api_with,
    codec_with,
    create_endpoint,
    decoded_history,
    delivery_outcome,
    post_event,
    raw_history,
    tracking_event,
)
from worker import delivery_worker

PASSWORD, HEADER_VALUE = "pw-Zq81-secret", "hv-Kx92-secret"


async def test_no_secret_is_stored_in_clear_in_temporal_nor_shown_by_the_codec(
    api, client, receiver, settings, temporal_address
):
    url = receiver.url()
    endpoint = await create_endpoint(
        api,
        url,
        auth={"username": "shop", "password": PASSWORD},
        custom_header={"key": "X-Shop-Token", "value": HEADER_VALUE},
    )
    signing_secret = (await api.post(f"/v1/endpoints/{endpoint['id']}/secret")).json()["secret"]
    await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"auth": {"username": "shop", "password": PASSWORD + "2"}})
    accepted = await post_event(api, tracking_event())
    [delivery] = accepted["deliveries"]
    await delivery_outcome(client, delivery["id"])
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    sent = receiver.requests(url)[-1].headers
    # They were really used: opened by the worker at send time.
    assert sent["x-shop-token"] == HEADER_VALUE and sent["authorization"] == _basic("shop", PASSWORD + "2")
    assert _verify(signing_secret, sent, receiver.requests(url)[-1].body) == [True]

    secrets = [PASSWORD, HEADER_VALUE, signing_secret, _basic("shop", PASSWORD), _basic("shop", PASSWORD + "2")]
    operator = settings.model_copy(update={"operator_token": SecretStr("token-operator")})
    decoded: dict[str, str] = {}
    async with codec_with(operator) as codec:
        for workflow_id in (registry_workflow_id("default"), delivery["id"], first_connection_id(endpoint["id"])):
            raw = await raw_history(temporal_address, workflow_id)
            assert [s for s in secrets if s.encode() in raw] == [], workflow_id
            # Not just absent: the payloads are sealed (the body's words are not readable either).
            assert b"Shipment delivered" not in raw and b"binary/encrypted" in raw
            # What an operator reads, every payload decoded (update arguments included): still no secret.
            decoded[workflow_id] = await decoded_history(
                temporal_address, workflow_id, codec, {"Authorization": "Bearer token-operator"}
            )
            assert [s for s in secrets if s in decoded[workflow_id]] == [], workflow_id

    # The decoding worked: the registry's update arguments read, their credentials sealed.
    assert "X-Shop-Token" in decoded[registry_workflow_id("default")]
    assert '"ciphertext"' in decoded[registry_workflow_id("default")]
    assert "Shipment delivered" in decoded[delivery["id"]]


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


async def test_each_token_sees_only_its_own_account(settings, worker, client, receiver):
    tokens = {"shop-a": SecretStr("token-a"), "shop-b": SecretStr("token-b")}
    since = datetime.now(UTC).isoformat()  # within the log's retention: the 404 is about the endpoint
    async with api_with(settings.model_copy(update={"api_tokens": tokens})) as http:
        a = {"Authorization": "Bearer token-a"}
        b = {"Authorization": "Bearer token-b"}
        url = receiver.url()
        created = await http.post("/v1/endpoints", json={"url": url, "events": ["TRACKING_UPDATE"]}, headers=a)
        endpoint_id = created.json()["id"]
        delivery_id = first_connection_id(endpoint_id)
        await delivery_outcome(client, delivery_id)
        from_b = await post_event_as(http, b, tracking_event())

        answers: dict[str, httpx.Response] = {
            "list": await http.get("/v1/endpoints", headers=b),
            "get": await http.get(f"/v1/endpoints/{endpoint_id}", headers=b),
            "patch": await http.patch(f"/v1/endpoints/{endpoint_id}", json={"description": "x"}, headers=b),
            "test": await http.post(f"/v1/endpoints/{endpoint_id}/test", headers=b),
            "recover": await http.post(f"/v1/endpoints/{endpoint_id}/recover", json={"since": since}, headers=b),
            "delete": await http.delete(f"/v1/endpoints/{endpoint_id}", headers=b),
            "delivery": await http.get(f"/v1/deliveries/{delivery_id}", headers=b),
            "retry": await http.post(f"/v1/deliveries/{delivery_id}/retry", headers=b),
            "deliveries": await http.get("/v1/deliveries", params={"endpoint_id": endpoint_id}, headers=b),
        }
        own = await http.get(f"/v1/deliveries/{delivery_id}", headers=a)
        unknown = await http.get("/v1/endpoints", headers={"Authorization": "Bearer token-c"})

    assert answers.pop("list").json() == []
    assert answers.pop("deliveries").json()["data"] == []
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 404)
    assert from_b["deliveries"] == []  # B's events never reach A's endpoints
    assert own.status_code == 200 and own.json()["endpoint_id"] == endpoint_id
    assert unknown.status_code == 401
    assert len(receiver.requests(url)) == 1  # the first connection only


async def post_event_as(http: httpx.AsyncClient, headers: dict[str, str], event: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/v1/events", json=event, headers=headers)
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def test_private_destinations_are_refused_at_registration(settings, worker):
    guarded = settings.model_copy(update={"allow_private_networks": False})
    urls = [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/hook",
        "http://10.0.0.1/hook",
        # The IPv6 forms issue 13 found accepted: IPv4-compatible, SIIT, NAT64 of loopback, site-local.
        "http://[::127.0.0.1]:8080/hook",
        "http://[::ffff:0:7f00:1]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[fec0::1]/hook",
    ]
    # Names a resolver reads as IPv4 addresses (loopback and 0.0.0.0): no valid host at all.
    numbers = ["http://2130706433/hook", "http://0x7f000001/hook", "http://0/hook", "http://127.1/hook"]
    async with api_with(guarded) as http:
        refusals = [
            await http.post("/v1/endpoints", json={"url": u, "events": ["ORDER_SHIPPED"]}) for u in urls + numbers
        ]
        listed = await http.get("/v1/endpoints")

    for url, response in zip(urls + numbers, refusals, strict=True):
        assert response.status_code == 422, url
        [problem] = response.json()["errors"]
        expected = "not ending in a number" if url in numbers else "public addresses only"
        assert problem["field"] == "url" and expected in problem["message"], url
        assert str(urlsplit(url).hostname) not in problem["message"], "a refusal never echoes the refused value"
    assert listed.json() == []


async def test_a_private_destination_is_named_with_the_other_fields_refused(settings, worker):
    """One answer names every problem: the address check does not wait for the rest to be fixed."""
    guarded = settings.model_copy(update={"allow_private_networks": False})
    async with api_with(guarded) as http:
        created = await http.post("/v1/endpoints", json={"url": "http://10.0.0.1/hook", "events": ["NO_SUCH"]})
        edited = await http.patch("/v1/endpoints/ep_x", json={"url": "http://[::1]/in", "retry": {"max_retries": 11}})
        listed = await http.get("/v1/endpoints")

    assert created.status_code == 422 and edited.status_code == 422
    assert {p["field"] for p in created.json()["errors"]} == {"url", "events.0"}
    assert {p["field"] for p in edited.json()["errors"]} == {"url", "retry.max_retries"}
    assert all(
        "public addresses only" in p["message"]
        for a in (created, edited)
        for p in a.json()["errors"]
        if p["field"] == "url"
    )
    assert listed.json() == []


async def test_a_name_rebound_to_loopback_after_registration_is_refused_at_send_time(settings, client, receiver):
    # Its own account and task queue: the registry, and so the first connection, run on the guarded worker.
    queue = settings.task_queue + "-guarded"
    tokens = {"rebind": SecretStr("token-r")}
    guarded = settings.model_copy(update={"allow_private_networks": False, "task_queue": queue, "api_tokens": tokens})
    port = receiver.base_url.rsplit(":", 1)[1]
    path = receiver.path()

    async def at_registration(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]  # public when the merchant registers it…

    async def at_send_time(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # …and rebound to loopback afterwards

    async with (
        delivery_worker(client, guarded, at_send_time) as running,
        running,
        api_with(guarded, at_registration) as http,
    ):
        auth = {"Authorization": "Bearer token-r"}
        created = await http.post(
            "/v1/endpoints",
            headers=auth,
            json={
                "url": f"http://rebind.test:{port}{path}",
                "events": ["ORDER_SHIPPED"],
                "retry": {"enabled": True, "max_retries": 3},
            },
        )
        assert created.status_code == 201, created.text
        record = await delivery_outcome(client, first_connection_id(created.json()["id"]))
        await http.delete(f"/v1/endpoints/{created.json()['id']}", headers=auth)

    assert record.result == "failed" and record.retry == 0  # not retried: it would never be allowed
    assert record.error == "Endpoint not allowed: rebind.test resolves to 127.0.0.1, which is a loopback address"
    assert receiver.requests(path) == []


def _verify(secret: str, headers: dict[str, str], body: bytes) -> list[bool]:
    """A receiver's check, written from the Standard Webhooks spec: one verdict per signature."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return [hmac.compare_digest(s.removeprefix("v1,"), expected) for s in headers["webhook-signature"].split(" ")]


async def _deliver_once(api, client, receiver, url: str) -> dict[str, str]:
    accepted = await post_event(api, tracking_event())
    [delivery] = accepted["deliveries"]
    await delivery_outcome(client, delivery["id"])
    [request] = [r for r in receiver.requests(url) if r.headers["webhook-id"] == delivery["id"]]
    assert json.loads(request.body)["Event"] == "TRACKING_UPDATE"
    seen: dict[str, str] = request.headers | {"_body": request.body.decode()}
    return seen


async def test_signed_webhooks_verify_and_rotate_with_a_grace_period(api, client, receiver, settings):
    url = receiver.url()
    endpoint = await create_endpoint(api, url, events=["TRACKING_UPDATE"])
    first = (await api.post(f"/v1/endpoints/{endpoint['id']}/secret")).json()
    signed = await _deliver_once(api, client, receiver, url)

    second = (await api.post(f"/v1/endpoints/{endpoint['id']}/secret")).json()
    during_grace = await _deliver_once(api, client, receiver, url)
    async with api_with(settings.model_copy(update={"signing_secret_grace_hours": 0})) as no_grace:
        third = (await no_grace.post(f"/v1/endpoints/{endpoint['id']}/secret")).json()
    after_grace = await _deliver_once(api, client, receiver, url)
    shown = await api.get(f"/v1/endpoints/{endpoint['id']}")
    stopped = await api.delete(f"/v1/endpoints/{endpoint['id']}/secret")
    unsigned = await _deliver_once(api, client, receiver, url)

    assert first["secret"].startswith("whsec_") and first["endpoint"]["signing"]["secret_created_at"]
    assert abs(int(signed["webhook-timestamp"]) - time.time()) < 60
    assert _verify(first["secret"], signed, signed["_body"].encode()) == [True]
    # During the grace period both secrets sign: the newest first, then the old one.
    assert _verify(second["secret"], during_grace, during_grace["_body"].encode()) == [True, False]
    assert _verify(first["secret"], during_grace, during_grace["_body"].encode()) == [False, True]
    assert _verify(third["secret"], after_grace, after_grace["_body"].encode()) == [True]
    assert "whsec_" not in shown.text and shown.json()["signing"] is not None
    assert stopped.json()["signing"] is None and "webhook-signature" not in unsigned


async def test_a_rotation_keeps_the_two_newest_previous_secrets_signing(api, client, receiver):
    """Every secret in its grace signed every POST, and an outside probe's 800 rotations made a
    74 KB `webhook-signature` header its receiver could not read: every delivery then failed for
    a day. The new secret and the two newest before it sign; an older one stops at the rotation."""
    url = receiver.url()
    endpoint = await create_endpoint(api, url, events=["TRACKING_UPDATE"])
    secrets = [(await api.post(f"/v1/endpoints/{endpoint['id']}/secret")).json()["secret"] for _ in range(5)]
    signed = await _deliver_once(api, client, receiver, url)

    body = signed["_body"].encode()
    assert len(signed["webhook-signature"].split()) == 3
    assert [any(_verify(secret, signed, body)) for secret in secrets] == [False, False, True, True, True]
    assert _verify(secrets[-1], signed, body)[0], "the newest secret signs first"


async def test_oversized_bodies_are_413_and_accept_nothing(api, receiver):
    huge = {"url": receiver.url(), "events": ["ORDER_SHIPPED"], "description": "x" * (2 * 1024 * 1024)}

    declared = await api.post("/v1/endpoints", json=huge)

    async def chunks() -> AsyncIterator[bytes]:
        payload = json.dumps(huge).encode()
        for start in range(0, len(payload), 65536):
            yield payload[start : start + 65536]

    streamed = await api.post("/v1/endpoints", content=chunks(), headers={"content-type": "application/json"})
    long_field = await api.post("/v1/endpoints", json=huge | {"description": "x" * 1025})

    assert declared.status_code == 413 and declared.json()["errors"][0]["field"] == "body"
    assert streamed.status_code == 413
    assert long_field.status_code == 422 and long_field.json()["errors"][0]["field"] == "description"
    assert (await api.get("/v1/endpoints")).json() == []
