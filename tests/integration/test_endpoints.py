"""`/v1/endpoints` over real HTTP: validation, masking, first connection, edits and deletes (CONTRACT §1)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from domain.endpoints import Endpoint, RetrySettings
from domain.events import EventType
from domain.ids import first_connection_id, registry_workflow_id
from domain.samples import sample_order_error, sample_order_shipped, sample_tracking_update
from domain.wire import wire_body
from tests.integration.helpers import api_with, create_endpoint, delivery_outcome, post_event, tracking_event
from tests.receiver import Reply, error
from worker import delivery_worker
from workflows.endpoint_registry import EndpointRegistryWorkflow
from workflows.registry_messages import RegistryState

SECRETS = {
    "auth": {"username": "shop", "password": "s3cret-pw"},
    "custom_header": {"key": "X-Shop-Token", "value": "tok-9f8e"},
}


async def test_create_read_list_and_patch_never_show_secrets(api, receiver):
    created = await api.post(
        "/v1/endpoints",
        json={"url": receiver.url(), "events": ["TRACKING_UPDATE"], "retry": {"enabled": True, "max_retries": 3}}
        | SECRETS,
    )
    assert created.status_code == 201
    endpoint = created.json()
    assert endpoint["id"].startswith("ep_") and endpoint["created_at"]
    assert endpoint["auth"] == {"username": "shop", "password": "********"}
    assert endpoint["custom_header"] == {"key": "X-Shop-Token", "value": "********"}

    read = await api.get(f"/v1/endpoints/{endpoint['id']}")
    listed = await api.get("/v1/endpoints")
    patched = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"description": "main shop"})

    assert read.json() == endpoint
    assert [e["id"] for e in listed.json()] == [endpoint["id"]]
    assert patched.status_code == 200
    assert patched.json()["description"] == "main shop"
    assert patched.json()["retry"] == {"enabled": True, "max_retries": 3}
    for answer in (created, read, listed, patched):
        assert "s3cret-pw" not in answer.text and "tok-9f8e" not in answer.text


async def test_eleven_retries_is_refused_naming_the_field_and_the_limit(api, receiver):
    response = await api.post(
        "/v1/endpoints",
        json={"url": receiver.url(), "events": ["ORDER_SHIPPED"], "retry": {"enabled": True, "max_retries": 11}},
    )

    assert response.status_code == 422
    [problem] = response.json()["errors"]
    assert problem["field"] == "retry.max_retries"
    assert "10" in problem["message"]
    assert (await api.get("/v1/endpoints")).json() == []


async def test_bad_input_is_a_4xx_naming_the_field_and_never_echoes_it(api, receiver):
    cases = [
        ({"url": "ftp://shop.example.com/hook", "events": ["ORDER_SHIPPED"]}, "url"),
        ({"url": "https://shop.example.com/" + "a" * 2048, "events": ["ORDER_SHIPPED"]}, "url"),
        ({"url": receiver.url(), "events": []}, "events"),
        ({"url": receiver.url(), "events": ["ORDER_LOST"]}, "events.0"),
        ({"url": receiver.url(), "events": ["ORDER_SHIPPED", "ORDER_SHIPPED"]}, "events"),
        (
            {"url": receiver.url(), "events": ["ORDER_SHIPPED"], "custom_header": {"key": "Bad Name", "value": "x"}},
            "custom_header.key",
        ),
        (
            {"url": receiver.url(), "events": ["ORDER_SHIPPED"], "custom_header": {"key": "X-A", "value": "a\r\nB: c"}},
            "custom_header.value",
        ),
        (
            {
                "url": receiver.url(),
                "events": ["ORDER_SHIPPED"],
                "custom_header": {"key": "Content-Type", "value": "x"},
            },
            "custom_header.key",
        ),
        (
            {
                "url": receiver.url(),
                "events": ["ORDER_SHIPPED"],
                "custom_header": {"key": "Authorization", "value": "x"},
            }
            | {"auth": {"username": "u", "password": "p4ss-secret"}},
            "custom_header.key",
        ),
        (
            {
                "url": receiver.url(),
                "events": ["ORDER_SHIPPED"],
                "auth": {"username": "a:b", "password": "p4ss-secret"},
            },
            "auth.username",
        ),
        ({"url": receiver.url(), "events": ["ORDER_SHIPPED"], "colour": "blue"}, "body"),
        ({"url": receiver.url(), "events": ["ORDER_SHIPPED"], "description": "shop \u202enoitpircsed"}, "description"),
        ({"url": receiver.url(), "events": ["ORDER_SHIPPED"], "description": "shop\x00"}, "description"),
        # Issue 13: the port and the unknown key were echoed.
        ({"url": "https://shop.example.com:p4ss-secret/h", "events": ["ORDER_SHIPPED"]}, "url"),
        ({"url": receiver.url(), "events": ["ORDER_SHIPPED"], "p4ss-secret": "x"}, "body"),
    ]
    for body, field in cases:
        response = await api.post("/v1/endpoints", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in [p["field"] for p in response.json()["errors"]], (field, response.text)
        assert "p4ss-secret" not in response.text
    assert (await api.get("/v1/endpoints")).json() == []


async def test_a_patch_that_breaks_the_whole_is_refused_and_changes_nothing(api, receiver):
    endpoint = await create_endpoint(api, receiver.url(), custom_header={"key": "Authorization", "value": "Token x"})

    adds_auth = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"auth": {"username": "u", "password": "p"}})
    nulls_url = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"url": None})

    assert adds_auth.status_code == 422
    assert adds_auth.json()["errors"][0]["field"] == "custom_header.key"
    assert nulls_url.status_code == 422 and nulls_url.json()["errors"][0]["field"] == "url"
    assert (await api.get(f"/v1/endpoints/{endpoint['id']}")).json() == endpoint


JSON = {"content-type": "application/json"}
BAD_HOSTS = ["https://" + "a" * 64 + ".example.com/h", "https://a..b/h", "https://x\ud800y.example.com/h"]


async def _offline_resolver(host: str, port: int) -> list[str]:
    """The system resolver's first step (it IDNA-encodes the name, raising UnicodeError), then no DNS."""
    host.encode("idna")
    raise OSError("no such host")


async def test_a_host_no_resolver_takes_is_422_on_url_in_every_mode(api, settings, receiver):
    endpoint = await create_endpoint(api, receiver.url())
    guarded = settings.model_copy(update={"allow_private_networks": False})
    async with api_with(guarded, _offline_resolver) as guarded_api:
        for http in (api, guarded_api):
            for url in BAD_HOSTS:
                # json.dumps escapes a lone surrogate as JSON allows; httpx's json= cannot encode it.
                body = json.dumps({"url": url, "events": ["ORDER_SHIPPED"]})
                created = await http.post("/v1/endpoints", content=body, headers=JSON)
                patched = await http.patch(
                    f"/v1/endpoints/{endpoint['id']}", content=json.dumps({"url": url}), headers=JSON
                )
                for response in (created, patched):
                    assert response.status_code == 422, (url, response.text)
                    assert [p["field"] for p in response.json()["errors"]] == ["url"]

    assert (await api.get("/v1/endpoints")).json() == [endpoint]


async def test_unknown_endpoints_are_404_without_echoing_the_id(api):
    answers = [
        await api.get("/v1/endpoints/ep_missing<b>"),
        await api.patch("/v1/endpoints/ep_missing<b>", json={"description": "x"}),
        await api.delete("/v1/endpoints/ep_missing<b>"),
        await api.post("/v1/endpoints/ep_missing<b>/test"),
    ]
    assert [a.status_code for a in answers] == [404] * 4
    assert {a.json()["detail"] for a in answers} == {"no endpoint with this id in your account"}


async def test_first_connection_sends_order_shipped_whatever_the_events(api, client, receiver):
    url = receiver.url()
    endpoint = await create_endpoint(api, url, events=["TRACKING_UPDATE"])

    record = await delivery_outcome(client, first_connection_id(endpoint["id"]))
    [request] = await receiver.wait_for(url, 1)

    assert record.kind == "first_connection" and record.result == "success"
    assert json.loads(request.body)["Event"] == "ORDER_SHIPPED"
    assert request.body == wire_body(sample_order_shipped("any")).encode()


async def test_an_edit_is_used_by_the_very_next_event(api, client, receiver):
    old_url, new_url = receiver.url(), receiver.url()
    endpoint = await create_endpoint(api, old_url, events=["TRACKING_UPDATE"])
    await delivery_outcome(client, first_connection_id(endpoint["id"]))

    edited = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"url": new_url})
    accepted = await post_event(api, tracking_event())
    record = await delivery_outcome(client, accepted["deliveries"][0]["id"])

    assert edited.status_code == 200
    assert record.endpoint_url == new_url
    assert len(receiver.requests(new_url)) == 1
    assert len(receiver.requests(old_url)) == 1  # the first connection only


async def test_an_event_is_delivered_only_to_endpoints_subscribed_to_it(api, client, receiver):
    tracking = await create_endpoint(api, receiver.url(), events=["TRACKING_UPDATE"])
    await create_endpoint(api, receiver.url(), events=["ORDER_ERROR"])

    accepted = await post_event(api, tracking_event())

    assert [d["endpoint_id"] for d in accepted["deliveries"]] == [tracking["id"]]


async def test_a_deleted_endpoint_receives_nothing_more(api, client, receiver):
    url = receiver.url()
    endpoint = await create_endpoint(api, url)
    await delivery_outcome(client, first_connection_id(endpoint["id"]))

    deleted = await api.delete(f"/v1/endpoints/{endpoint['id']}")
    accepted = await post_event(api, tracking_event())

    assert deleted.status_code == 204
    assert accepted["deliveries"] == []
    assert (await api.get(f"/v1/endpoints/{endpoint['id']}")).status_code == 404
    assert len(receiver.requests(url)) == 1


async def test_no_post_begins_once_a_delete_has_returned(api, client, receiver):
    """CONTRACT §1: a deleted endpoint receives nothing more. Events accepted just before the
    delete still have their first attempts to make, and a worker trusts the registry it read
    a moment ago: an outside review counted 46 POSTs begun after the 204, up to 0.7 s later."""
    url = receiver.url()
    endpoint = await create_endpoint(api, url)
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    accepted: list[dict[str, Any]] = []
    stop = asyncio.Event()

    async def post_until_stopped() -> None:
        while not stop.is_set():
            accepted.append(await post_event(api, tracking_event()))

    posting = [asyncio.create_task(post_until_stopped()) for _ in range(4)]
    await receiver.wait_for(url, 21)  # events flow: first attempts run from the worker's copy
    deleted = await api.delete(f"/v1/endpoints/{endpoint['id']}")
    returned = datetime.now(UTC)
    stop.set()
    await asyncio.gather(*posting)
    records = await asyncio.gather(
        *(delivery_outcome(client, d["id"]) for event in accepted for d in event["deliveries"])
    )

    assert deleted.status_code == 204
    late = [(r.id, a.started_at) for r in records for a in r.attempts if a.started_at >= returned]
    assert late == []
    assert all(r.attempts or r.error == f"Endpoint {endpoint['id']} was deleted: delivery stopped" for r in records)


async def test_deleting_an_endpoint_stops_its_pending_retries(api, client, receiver):
    url = receiver.url()
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 10})
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    # The receiver asks for 2 s between attempts: time to delete while a retry is pending.
    receiver.script(url, error(503, **{"retry-after": "2"}))
    accepted = await post_event(api, tracking_event())
    await receiver.wait_for(url, 2)

    await api.delete(f"/v1/endpoints/{endpoint['id']}")
    record = await delivery_outcome(client, accepted["deliveries"][0]["id"])

    assert record.result == "failed"
    assert record.error == f"Endpoint {endpoint['id']} was deleted: delivery stopped"
    assert len(receiver.requests(url)) == 2  # first connection + the one attempt before the delete


async def test_test_sends_the_seed_sample_once_and_shows_both_sides(api, receiver):
    url = receiver.url()
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 5}, **SECRETS)
    receiver.script(url, Reply(status=500, body=b'{"oops": 1}'))

    response = await api.post(f"/v1/endpoints/{endpoint['id']}/test")

    assert response.status_code == 200
    record = response.json()
    tests = [r for r in receiver.requests(url) if r.headers["webhook-id"] == record["id"]]
    assert len(tests) == 1  # a test is never retried
    assert tests[0].body == wire_body(sample_tracking_update("any")).encode()
    assert record["kind"] == "test" and record["event"] == "TRACKING_UPDATE"
    assert record["web_ui_url"].endswith(quote(record["id"], safe=""))  # the record, as the log shows it
    assert record["result"] == "failed"
    assert record["error"] == "HTTP response code is 500 (Internal Server Error), it must be 200"
    assert record["request"]["body"] == tests[0].body.decode()
    assert record["request"]["headers"]["Authorization"] == "********"
    assert record["response"]["status_text"] == "500 Internal Server Error"
    assert record["response"]["body"] == '{"oops": 1}'
    assert "s3cret-pw" not in response.text and "tok-9f8e" not in response.text


async def test_test_sends_the_event_asked_for(api, receiver):
    """Issue 17: Test could only send TRACKING_UPDATE; `{"event": …}` picks any order event."""
    url = receiver.url()
    endpoint = await create_endpoint(api, url)

    record = (await api.post(f"/v1/endpoints/{endpoint['id']}/test", json={"event": "ORDER_ERROR"})).json()

    [sent] = [r for r in receiver.requests(url) if r.headers["webhook-id"] == record["id"]]
    assert sent.body == wire_body(sample_order_error("any")).encode()
    assert record["event"] == "ORDER_ERROR" and record["result"] == "success"


async def test_test_of_an_event_it_cannot_send_is_refused_and_sends_nothing(api, receiver):
    url = receiver.url()
    endpoint = await create_endpoint(api, url)

    response = await api.post(f"/v1/endpoints/{endpoint['id']}/test", json={"event": "ENDPOINT_DISABLED"})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "event", "message": "must be 'ORDER_SHIPPED', 'ORDER_ERROR' or 'TRACKING_UPDATE'"}
    ]
    # Its first connection may still arrive; no test does (their delivery ids start `…/test-`).
    assert not [r for r in receiver.requests(url) if "/test-" in r.headers["webhook-id"]]


async def test_test_of_a_host_stored_before_the_host_rule_fails_at_once_as_one_attempt(settings, client):
    """Issue 13: such a /test took 31 s, made 6 attempts and showed a raw idna error (guarded worker)."""
    account = f"legacy-{uuid.uuid4().hex[:8]}"
    guarded = settings.model_copy(
        update={
            "allow_private_networks": False,
            "task_queue": f"{settings.task_queue}-{account}",
            "api_tokens": {account: SecretStr("token-legacy")},
        }
    )
    now = datetime.now(UTC)
    # A registry from before the rule: the API refuses this URL now, so it is planted as the registry's state.
    stored = Endpoint(
        id="ep_" + "0" * 20,
        url="https://" + "a" * 64 + ".example.com/hooks",
        events=[EventType.ORDER_SHIPPED],
        retry=RetrySettings(enabled=True, max_retries=5),
        created_at=now,
        updated_at=now,
    )
    async with delivery_worker(client, guarded, _offline_resolver) as running, running:
        await client.start_workflow(
            EndpointRegistryWorkflow.run,
            RegistryState(account=account, endpoints={stored.id: stored}),
            id=registry_workflow_id(account),
            task_queue=guarded.task_queue,
        )
        async with api_with(guarded, _offline_resolver) as http:
            started = time.monotonic()
            response = await http.post(
                f"/v1/endpoints/{stored.id}/test", headers={"Authorization": "Bearer token-legacy"}
            )
            took = time.monotonic() - started
        history = [e async for e in client.get_workflow_handle(response.json()["id"]).fetch_history_events()]

    assert response.status_code == 200, response.text
    record = response.json()
    assert record["result"] == "failed" and record["retry"] == 0 and record["response"] is None
    assert record["error"] == "Endpoint URL is invalid: it must have a host whose labels are at most 63 characters"
    assert took < 5, took
    # One run, not six: the first attempt, run locally, fails for good, and nothing follows it.
    assert [
        e.marker_recorded_event_attributes.marker_name
        for e in history
        if e.HasField("marker_recorded_event_attributes")
    ] == ["core_local_activity"]
    assert not [e for e in history if e.HasField("activity_task_scheduled_event_attributes")]
