"""Answers and stored settings that the worker could not handle: each is an attempt in the log,
counted against the endpoint's retries, and explained without quoting a secret."""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import pytest

from domain.delivery import DEFAULT_ACCOUNT
from domain.endpoints import CustomHeader, EndpointSpec
from domain.events import EventType
from domain.ids import first_connection_id
from domain.outcome import INVALID_HEADER_ERROR, NOT_JSON
from domain.validation import check_endpoint_url
from services.endpoints import EndpointRegistry, SnapshotCache
from tests.integration.helpers import create_endpoint, delivery_outcome, post_event, tracking_event
from tests.receiver import OK, Reply, error

NESTED_TOO_DEEP = Reply(body=b"[" * 100_000)  # a 2xx in JSON whose parse would exhaust Python's stack
# An HTTP date whose year no datetime holds.
RETRY_AFTER_BEYOND_TIME = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"


async def test_an_answer_nested_too_deep_to_read_is_one_failed_attempt_not_an_endless_loop(api, client, receiver):
    url = receiver.url(OK, NESTED_TOO_DEEP)
    endpoint = await create_endpoint(api, url)  # no retries
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    accepted = await post_event(api, tracking_event())
    record = await delivery_outcome(client, accepted["deliveries"][0]["id"])

    assert (record.result, record.retry, record.error) == ("failed", 0, NOT_JSON)
    assert len(receiver.requests(url)) == 2  # the first connection's POST and this delivery's one


async def test_a_retry_after_beyond_any_date_is_ignored_and_the_retry_counted(api, client, receiver):
    url = receiver.url(OK, error(503, **{"retry-after": RETRY_AFTER_BEYOND_TIME}), OK)
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 2})
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    accepted = await post_event(api, tracking_event())
    record = await delivery_outcome(client, accepted["deliveries"][0]["id"])

    assert (record.result, record.retry) == ("success", 1)
    assert [a.response.status_code for a in record.attempts if a.response] == [503, 200]
    assert record.attempts[0].error == "HTTP response code is 503 (Service Unavailable), it must be 200"
    assert len(receiver.requests(url)) == 3


async def test_a_custom_header_value_with_an_edge_space_is_refused_without_echoing_it(api, receiver):
    response = await api.post(
        "/v1/endpoints",
        json={
            "url": receiver.url(OK),
            "events": ["ORDER_SHIPPED"],
            "custom_header": {"key": "X-Shop-Token", "value": "TOPSECRET-abc123 "},
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        "custom_header.value: must not begin or end with a space or tab (HTTP does not allow it)"
    )
    assert "TOPSECRET" not in response.text


async def test_a_stored_custom_header_http_refuses_ends_the_delivery_without_a_post_or_a_leak(
    api, client, settings, receiver, caplog: pytest.LogCaptureFixture
):
    # Stored before the API refused such a value: the registry keeps what it accepted.
    registry = EndpointRegistry(client, settings.task_queue, DEFAULT_ACCOUNT, SnapshotCache(), settings.secret_box())
    url = receiver.url(OK)
    spec = EndpointSpec(
        url=check_endpoint_url(url),
        events=[EventType.TRACKING_UPDATE],
        retry={"enabled": True, "max_retries": 3},
        custom_header=CustomHeader(key="X-Shop-Token", value="TOPSECRET-abc123 "),
    )
    await registry.create(spec)
    caplog.set_level(logging.INFO)
    accepted = await post_event(api, tracking_event())
    record = await delivery_outcome(client, accepted["deliveries"][0]["id"])

    assert (record.result, record.retry, record.error) == ("failed", 0, INVALID_HEADER_ERROR)  # no retry can mend it
    assert receiver.requests(url) == []
    assert "TOPSECRET" not in record.model_dump_json()
    assert "TOPSECRET" not in caplog.text
    listed = await api.get("/v1/deliveries", params={"endpoint_id": record.endpoint_id})
    assert "TOPSECRET" not in listed.text


async def test_a_receivers_huge_headers_on_every_retry_leave_every_attempt_in_the_log(api, client, receiver):
    """100 KB of headers on each of 11 attempts outgrew what Temporal keeps of a failure: the
    delivery's whole log was lost. The log keeps a bounded part of each answer's headers."""
    url = receiver.url(OK, error(500, **{"x-huge": "h" * 100_000}))
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 10})
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    accepted = await post_event(api, tracking_event())
    record = await delivery_outcome(client, accepted["deliveries"][0]["id"])

    assert (record.result, record.retry, len(record.attempts)) == ("failed", 10, 11)
    assert record.error == "HTTP response code is 500 (Internal Server Error), it must be 200"
    for attempt in record.attempts:
        assert attempt.response is not None and attempt.response.headers_truncated
        assert attempt.response.headers["x-huge"] == "h" * 1024 + "…"


async def test_credentials_a_receiver_echoes_back_are_masked_in_the_log(api, client, receiver):
    password, header_value = "EchoPW123", "EchoHDR456"
    token = base64.b64encode(f"shop:{password}".encode()).decode()
    echo = Reply(
        status=500,
        body=json.dumps({"headers": {"authorization": f"Basic {token}", "x-tok": header_value}}).encode(),
        headers=(("content-type", "application/json"), ("x-echo", f"got {header_value}")),
    )
    url = receiver.url(OK, echo)
    endpoint = await create_endpoint(
        api,
        url,
        auth={"username": "shop", "password": password},
        custom_header={"key": "X-Tok", "value": header_value},
    )
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    accepted = await post_event(api, tracking_event())
    delivery_id = accepted["deliveries"][0]["id"]
    record = await delivery_outcome(client, delivery_id)

    assert record.response is not None and record.response.status_code == 500
    assert json.loads(record.response.body) == {"headers": {"authorization": "********", "x-tok": "********"}}
    assert record.response.headers["x-echo"] == "got ********"
    shown = (await api.get(f"/v1/deliveries/{delivery_id}")).text
    for secret in (password, header_value, token):
        assert secret not in shown and secret not in record.model_dump_json()


async def test_a_malformed_answer_echoing_a_credential_is_quoted_masked(api, client, receiver):
    """The error quotes the start of a malformed answer; one echoing the request's Basic token
    must not put it in the log in clear."""
    token = base64.b64encode(b"shop:EchoPW123-in-status").decode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 2OO Basic {token}\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        endpoint = await create_endpoint(
            api, f"http://127.0.0.1:{port}/hook", auth={"username": "shop", "password": "EchoPW123-in-status"}
        )
        record = await delivery_outcome(client, first_connection_id(endpoint["id"]))
    finally:
        server.close()

    assert record.error is not None and "not valid HTTP/1.1 (illegal status line" in record.error
    assert token not in record.model_dump_json() and "********" in record.error
