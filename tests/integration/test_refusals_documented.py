"""Every route driven into each 4xx it can give, each answer checked against the schema
/openapi.json declares for that route and status (issue 17: a client generated from the
document must be able to read every refusal).

The real API with a token, the session's Temporal and worker. Beyond the routes' own refusals:
a method a path does not have (405), a path that does not exist (404) and an oversized body on
a route that takes none (413) belong to no operation, so they are checked against the document's
error model, ErrorBody, which the document's description says every refusal has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from pydantic import SecretStr

from api.limits import MAX_BODY_BYTES
from domain.ids import event_delivery_id, first_connection_id
from tests.integration.helpers import api_with, create_endpoint, delivery_outcome, post_event, tracking_event
from tests.receiver import error
from tests.waiting import eventually

TOKEN = "refusals-token-5d2"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TOO_LARGE = b"[" + b" " * MAX_BODY_BYTES + b"]"
METHODS = ("put", "patch", "delete", "post", "get")


@dataclass(frozen=True)
class Refusal:
    method: str
    route: str  # the path as /openapi.json names it
    status: int
    path: str  # the path sent
    request: dict[str, Any] = field(default_factory=dict)  # json=, content=, params=, headers=

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path} -> {self.status}"


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """OpenAPI 3.1's schemas are JSON Schema 2020-12; their $refs point into the document."""
    return Draft202012Validator({**schema, "components": document.get("components", {})})


def _refusals(ids: dict[str, Any]) -> list[Refusal]:
    ep, missing_ep = f"/v1/endpoints/{ids['endpoint']}", "/v1/endpoints/ep_missing"
    missing_delivery = "/v1/deliveries/delivery/default/evt-missing/0"
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    big = {"content": TOO_LARGE, "headers": {"content-type": "application/json"}}

    def one(method: str, route: str, status: int, path: str, **request: Any) -> Refusal:
        return Refusal(method, route, status, path, request)

    return [
        one("post", "/v1/endpoints", 413, "/v1/endpoints", **big),
        one("post", "/v1/endpoints", 422, "/v1/endpoints", json={"url": "ftp://shop.example.com", "events": []}),
        one("get", "/v1/endpoints/{endpoint_id}", 404, missing_ep),
        one("patch", "/v1/endpoints/{endpoint_id}", 404, missing_ep, json={"description": "a shop"}),
        one("patch", "/v1/endpoints/{endpoint_id}", 413, ep, **big),
        one("patch", "/v1/endpoints/{endpoint_id}", 422, ep, json={"retry": {"enabled": True, "max_retries": 11}}),
        one("delete", "/v1/endpoints/{endpoint_id}", 404, missing_ep),
        one("post", "/v1/endpoints/{endpoint_id}/test", 404, f"{missing_ep}/test"),
        one("post", "/v1/endpoints/{endpoint_id}/test", 409, f"/v1/endpoints/{ids['throttled']}/test"),
        one("post", "/v1/endpoints/{endpoint_id}/test", 413, f"{ep}/test", **big),
        one("post", "/v1/endpoints/{endpoint_id}/test", 422, f"{ep}/test", json={"event": "ORDER_LOST"}),
        one("post", "/v1/endpoints/{endpoint_id}/secret", 404, f"{missing_ep}/secret"),
        one("post", "/v1/endpoints/{endpoint_id}/secret", 413, f"{ep}/secret", **big),
        one("post", "/v1/endpoints/{endpoint_id}/secret", 422, f"{ep}/secret", json={"scheme": "v9"}),
        one("delete", "/v1/endpoints/{endpoint_id}/secret", 404, f"{missing_ep}/secret"),
        one("post", "/v1/endpoints/{endpoint_id}/recover", 404, f"{missing_ep}/recover", json={"since": since}),
        one("post", "/v1/endpoints/{endpoint_id}/recover", 413, f"{ep}/recover", **big),
        one("post", "/v1/endpoints/{endpoint_id}/recover", 422, f"{ep}/recover", json={"since": "yesterday"}),
        one(
            "post",
            "/v1/endpoints/{endpoint_id}/recover",
            409,
            f"/v1/endpoints/{ids['disabled']}/recover",
            json={"since": since},
        ),
        one("post", "/v1/events", 409, "/v1/events", json=ids["conflicting_event"]),
        one("post", "/v1/events", 413, "/v1/events", **big),
        one("post", "/v1/events", 422, "/v1/events", json={"event": "ORDER_LOST"}),
        one("get", "/v1/deliveries", 422, "/v1/deliveries", params={"limit": 0}),
        one("get", "/v1/deliveries/{delivery_id}", 404, missing_delivery),
        one("post", "/v1/deliveries/{delivery_id}/retry", 404, f"{missing_delivery}/retry"),
        one("post", "/v1/deliveries/{delivery_id}/retry", 409, f"/v1/deliveries/{ids['pending']}/retry"),
        one("post", "/v1/deliveries/{delivery_id}/retry", 413, f"/v1/deliveries/{ids['pending']}/retry", **big),
        one("post", "/v1/deliveries/{delivery_id}/retry", 422, f"/v1/deliveries/{ids['pending']}/retry", json={"x": 1}),
    ]


def _unauthorized(document: dict[str, Any], ids: dict[str, Any]) -> list[Refusal]:
    """Every /v1 operation without a token and with a wrong one."""
    refusals = []
    for route, operations in document["paths"].items():
        path = route.replace("{endpoint_id}", ids["endpoint"]).replace("{delivery_id}", ids["delivered"])
        for method in operations:
            if route.startswith("/v1/"):
                for token in ("", "Bearer not-the-token"):
                    refusals.append(Refusal(method, route, 401, path, {"headers": {"Authorization": token}}))
    return refusals


async def _send(api: httpx.AsyncClient, refusal: Refusal) -> httpx.Response:
    request = dict(refusal.request)
    request["headers"] = AUTH | request.get("headers", {})
    return await api.request(refusal.method.upper(), refusal.path, **request)


def _problems(answer: httpx.Response, validator: Draft202012Validator) -> list[str]:
    if answer.headers.get("content-type") != "application/json":
        return [f"content-type {answer.headers.get('content-type')}"]
    return [e.message for e in validator.iter_errors(answer.json())]


async def test_every_route_gives_each_refusal_it_documents_in_the_documented_shape(settings, worker, client, receiver):
    guarded = settings.model_copy(update={"api_tokens": {"default": SecretStr(TOKEN)}})
    async with api_with(guarded) as api:
        api.headers.update(AUTH)
        document = (await api.get("/openapi.json")).json()
        assert "`ErrorBody`" in document["info"]["description"]
        endpoint = await create_endpoint(api, receiver.url(), events=["ORDER_SHIPPED"])
        await delivery_outcome(client, first_connection_id(endpoint["id"]))
        # A delivery that stays pending for a while: its receiver answers 503 and it has retries
        # left. The endpoint is throttled meanwhile (the 503 asks for a minute's pause).
        failing = receiver.url(error(503, **{"retry-after": "60"}))
        paused = await create_endpoint(
            api, failing, events=["TRACKING_UPDATE"], retry={"enabled": True, "max_retries": 5}
        )
        event = tracking_event()
        [pending] = (await post_event(api, event))["deliveries"]
        assert pending["id"] == event_delivery_id("default", event["id"], 0)
        await eventually(
            lambda: api.get(f"/v1/endpoints/{paused['id']}"),
            lambda shown: shown.json()["throttled_until"] is not None,
            what="the 503's pause",
        )
        disabled = await create_endpoint(api, receiver.url(), events=["ORDER_ERROR"], disabled=True)
        ids = {
            "endpoint": endpoint["id"],
            "disabled": disabled["id"],
            "throttled": paused["id"],
            "delivered": first_connection_id(endpoint["id"]),
            "pending": pending["id"],
            "conflicting_event": event | {"order": event["order"] | {"carrier": "DHL"}},
        }
        refusals = _refusals(ids) + _unauthorized(document, ids)

        failures = []
        for refusal in refusals:
            answer = await _send(api, refusal)
            declared = document["paths"][refusal.route][refusal.method]["responses"].get(str(refusal.status))
            if answer.status_code != refusal.status:
                failures.append(f"{refusal}: answered {answer.status_code} {answer.text[:200]}")
            elif declared is None:
                failures.append(f"{refusal}: not in /openapi.json for {refusal.method.upper()} {refusal.route}")
            else:
                schema = declared["content"]["application/json"]["schema"]
                failures += [f"{refusal}: {problem}" for problem in _problems(answer, _validator(document, schema))]

        # Refusals of no operation: the document's error model.
        error_body = _validator(document, {"$ref": "#/components/schemas/ErrorBody"})
        beyond = [await api.get("/v1/nowhere"), await api.request("GET", "/v1/endpoints", content=TOO_LARGE)]
        for route, operations in document["paths"].items():
            absent = next(m for m in METHODS if m not in operations)
            path = route.replace("{endpoint_id}", ids["endpoint"]).replace("{delivery_id}", ids["delivered"])
            beyond.append(await api.request(absent.upper(), path))
        for answer, status in zip(beyond, [404, 413] + [405] * len(document["paths"]), strict=True):
            sent = f"{answer.request.method} {answer.request.url.path}"
            if answer.status_code != status:
                failures.append(f"{sent}: answered {answer.status_code}, not {status}")
            failures += [f"{sent}: {problem}" for problem in _problems(answer, error_body)]

    assert not failures, "\n".join(failures)
    # Every 4xx the document lists was driven, so none is listed that the API never gives.
    documented = {
        (method, route, int(code))
        for route, operations in document["paths"].items()
        for method, operation in operations.items()
        for code in operation["responses"]
        if code.startswith("4")
    }
    assert documented == {(r.method, r.route, r.status) for r in refusals}
