"""Receivers that misbehave: one that never answers, ones that hang up mid-response, one
whose body never ends, one that sends it a byte at a time, one that switches protocols and one
that does not speak HTTP. Each attempt ends in bounded time with a clear error, the
worker's memory stays bounded, and a healthy endpoint's deliveries are not held up."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from domain.ids import first_connection_id
from tests.conftest import free_port
from tests.faults.receivers import RawReceiver, ScriptedReceiver
from tests.faults.stack import api_process, create_endpoint, outcomes, temporal_stack, wait_until, worker_process
from tests.integration.helpers import tracking_event
from tests.receiver import BackgroundServer

HTTP_TIMEOUT = 2.0
EVENTS = 4
MAX_RETRIES = 1  # two attempts per bad delivery
EXPECTED_ERRORS = {
    "/silent": "Endpoint unreachable: no response within 2s",
    "/hangup-headers": "Endpoint unreachable: connection closed",
    "/hangup-body": "HTTP response cut short: the connection closed before its body ended",
    "/huge": "HTTP response body is larger than 1048576 bytes",
    "/trickle": "HTTP response cut short: its body did not end within 2s",
    "/switching": "Endpoint unreachable: the receiver answered 101 Switching Protocols",
    "/garbled": "Endpoint unreachable: the receiver's answer is not valid HTTP/1.1 (illegal status line",
    "/badgzip": "HTTP response must be in JSON format. Please Retry",  # an answer came: a 200
    "/hugeheaders": "Endpoint unreachable: the receiver's response headers are larger than the worker reads",
}
MEMORY_GROWTH_LIMIT_KIB = 100 * 1024


async def test_bad_receivers_fail_cleanly_in_bounded_time_and_memory(tmp_path):
    fast = ScriptedReceiver()
    async with (
        temporal_stack(tmp_path, WEBHOOKS_HTTP_TIMEOUT=str(HTTP_TIMEOUT)) as stack,
        worker_process(stack) as worker,
        api_process(stack) as api_proc,
        httpx.AsyncClient(base_url=api_proc.url, timeout=30) as api,
        BackgroundServer(fast, free_port()) as fast_server,
        RawReceiver() as raw,
    ):
        client = await stack.client()
        fast.base_url = fast_server.url
        fast_url = fast.endpoint()
        # The healthy endpoint first: its first connection warms the worker up before the baseline.
        fast_id = await create_endpoint(api, fast_url)
        await outcomes(client, [first_connection_id(fast_id)], timeout=30)
        rss_before = worker.memory_kib("VmRSS")

        bad_ids = {path: await create_endpoint(api, raw.url(path), max_retries=MAX_RETRIES) for path in EXPECTED_ERRORS}

        # Events posted together: every one goes to the four bad endpoints and the healthy one.
        sent_at: dict[str, float] = {}
        answered_at: dict[str, float] = {}

        async def post(event: dict[str, Any]) -> dict[str, Any]:
            sent_at[event["id"]] = time.monotonic()
            response = await api.post("/v1/events", json=event)
            answered_at[event["id"]] = time.monotonic()
            assert response.status_code == 202, response.text
            accepted: dict[str, Any] = response.json()
            return accepted

        accepted = await asyncio.gather(*(post(tracking_event()) for _ in range(EVENTS)))
        by_endpoint: dict[str, list[str]] = {}
        for answer in accepted:
            for delivery in answer["deliveries"]:
                by_endpoint.setdefault(delivery["endpoint_id"], []).append(delivery["id"])
        fast_deliveries = by_endpoint.pop(fast_id)
        await wait_until(lambda: all(fast.count(d) == 1 for d in fast_deliveries), 20, "the fast deliveries")
        arrivals = {
            _event_id(p.webhook_id): p.received_at for p in fast.posts_to(fast_url) if p.webhook_id in fast_deliveries
        }
        # From the 202 (the deliveries are started) to the POST: the worker's own delay.
        after_202 = {e: arrivals[e] - answered_at[e] for e in answered_at}
        # From sending the event to the POST: what the sender of the event sees.
        after_send = {e: arrivals[e] - sent_at[e] for e in sent_at}

        bad = {path: by_endpoint[endpoint_id] for path, endpoint_id in bad_ids.items()}
        firsts = {path: first_connection_id(endpoint_id) for path, endpoint_id in bad_ids.items()}
        records = await outcomes(client, [d for ds in bad.values() for d in ds] + list(firsts.values()), timeout=60)
        rss_after, peak_after = worker.memory_kib("VmRSS"), worker.memory_kib("VmHWM")
        fast_records = await outcomes(client, fast_deliveries, timeout=10)
        assert worker.running, worker.log_tail()

    # The healthy endpoint got every event at once, not after the bad ones' timeouts.
    assert all(r.result == "success" for r in fast_records.values()), fast_records
    # A silent receiver holds each attempt for HTTP_TIMEOUT: a fast delivery queued behind bad
    # attempts would arrive after the first silent attempt of its event was given up.
    assert max(after_202.values()) < HTTP_TIMEOUT, (after_202, after_send)
    silent = raw.exchanges_to(raw.url("/silent"))
    for event_id, arrived in arrivals.items():
        given_up = min(e.closed_at or 0 for e in silent if e.webhook_id.split("/")[2] == event_id)
        assert arrived < given_up, (event_id, after_202, after_send)

    for path, expected in EXPECTED_ERRORS.items():
        for delivery_id in [*bad[path], firsts[path]]:
            record = records[delivery_id]
            assert record.result == "failed", (path, record)
            assert record.retry == MAX_RETRIES, (path, record)
            assert record.error is not None and record.error.startswith(expected), (path, record.error)
            # The final attempt ended within the HTTP timeout (plus scheduling slack) …
            assert record.time_spent_ms is not None and record.time_spent_ms < (HTTP_TIMEOUT + 3) * 1000, record
            # … and so did the whole delivery: two bounded attempts and one short backoff.
            assert record.date_end is not None
            assert (record.date_end - record.date).total_seconds() < 2 * (HTTP_TIMEOUT + 1) + 5, record
        # Every attempt reached the receiver and every connection was closed by the worker in bounded time.
        exchanges = raw.exchanges_to(raw.url(path))
        assert len(exchanges) == (EVENTS + 1) * (MAX_RETRIES + 1), (path, len(exchanges))
        for exchange in exchanges:
            assert exchange.closed_at is not None, (path, exchange)
            assert exchange.closed_at - exchange.opened_at < HTTP_TIMEOUT + 3, (path, exchange)

    # An answer whose body was unreadable, cut off or never ended is still an answer: its status is kept.
    for path in ("/badgzip", "/hangup-body", "/trickle"):
        answered = records[bad[path][0]].response
        assert answered is not None and (answered.status_code, answered.body_truncated) == (200, True), path
    # The huge body was not read to its end: the worker hung up after its 1 MiB cap.
    huge = raw.exchanges_to(raw.url("/huge"))
    assert max(e.body_bytes_sent for e in huge) < raw.huge_bytes // 4, [e.body_bytes_sent for e in huge]
    assert rss_after - rss_before < MEMORY_GROWTH_LIMIT_KIB, (rss_before, rss_after)
    assert peak_after - rss_before < MEMORY_GROWTH_LIMIT_KIB, (rss_before, peak_after)


def _event_id(delivery_id: str) -> str:
    """The event of an event's delivery, `delivery/{account}/{event_id}/{n}`."""
    prefix, _account, event_id, index = delivery_id.split("/")
    assert prefix == "delivery" and index.isdigit(), delivery_id
    return event_id
