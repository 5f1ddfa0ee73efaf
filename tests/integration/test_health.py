"""Endpoint health: a run of failed deliveries disables an endpoint; its events are skipped, not lost."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from domain.ids import first_connection_id, recovered_id, registry_workflow_id
from settings import Settings
from tests.integration.helpers import api_with, delivery_outcome, tracking_event
from tests.receiver import OK, error
from tests.waiting import eventually
from worker import delivery_worker


def _own_account(settings: Settings, account: str, hours: float) -> tuple[Settings, dict[str, str]]:
    """Settings for an account of the test's own, on its own task queue, whose endpoints are
    disabled by 3 failed deliveries in a row spanning `hours`; and its requests' auth header."""
    own = settings.model_copy(
        update={
            "task_queue": f"{settings.task_queue}-{account}",
            "api_tokens": {account: SecretStr(f"token-{account}")},
            "disable_after_failures": 3,
            "disable_after_hours": hours,
        }
    )
    return own, {"Authorization": f"Bearer token-{account}"}


async def test_failing_deliveries_disable_an_endpoint_whose_events_are_then_skipped_and_recoverable(
    settings, client, receiver
):
    # Its own account and worker: three failures in a row (over any time) disable.
    health, auth = _own_account(settings, "health", hours=0)
    url = receiver.url()
    since = datetime.now(UTC).isoformat()
    async with delivery_worker(client, health) as worker, worker, api_with(health) as http:

        async def deliver(*replies) -> tuple[str, str]:
            receiver.script(url, *replies)
            response = await http.post("/v1/events", json=tracking_event(), headers=auth)
            [delivery] = response.json()["deliveries"]
            return delivery["id"], (await delivery_outcome(client, delivery["id"])).result

        async def endpoint() -> dict[str, Any]:
            found: dict[str, Any] = (await http.get(f"/v1/endpoints/{endpoint_id}", headers=auth)).json()
            return found

        created = await http.post("/v1/endpoints", json={"url": url, "events": ["TRACKING_UPDATE"]}, headers=auth)
        endpoint_id = created.json()["id"]
        await delivery_outcome(client, first_connection_id(endpoint_id))

        two_failures = [await deliver(error(500)) for _ in range(2)]
        counted = await eventually(endpoint, lambda e: e["failed_deliveries_in_a_row"] == 2)
        await deliver(OK)  # a success ends the run
        reset = await eventually(endpoint, lambda e: e["failed_deliveries_in_a_row"] == 0)
        three_failures = [await deliver(error(500)) for _ in range(3)]
        disabled = await eventually(endpoint, lambda e: e["disabled"])
        posts_before = len(receiver.requests(url))
        skipped_id, skipped_result = await deliver(OK)
        posts_while_disabled = len(receiver.requests(url)) - posts_before

        enabled = await http.patch(f"/v1/endpoints/{endpoint_id}", json={"disabled": False}, headers=auth)
        recovered = await http.post(f"/v1/endpoints/{endpoint_id}/recover", json={"since": since}, headers=auth)
        rerun = await delivery_outcome(client, recovered_id(skipped_id))

    assert [result for _, result in two_failures + three_failures] == ["failed"] * 5
    assert counted["disabled"] is False and reset["disabled"] is False
    assert disabled["failed_deliveries_in_a_row"] == 3
    assert disabled["disabled_reason"].startswith("3 deliveries failed in a row since ")
    assert skipped_result == "skipped" and posts_while_disabled == 0
    assert enabled.json()["disabled"] is False and enabled.json()["failed_deliveries_in_a_row"] == 0
    # The five failures and the skipped one are re-run, once each.
    assert recovered.json() == {"found": 6, "started": 6}
    assert rerun.result == "success" and rerun.rerun_of == skipped_id


async def test_an_endpoint_down_for_long_reports_only_the_failures_its_health_counts(settings, client, receiver):
    """An outside run found a busy account's registry rewritten on every failed delivery of a
    down endpoint (3,562 reports in 8 minutes), until its replays outgrew their task timeout
    and the account's events were refused. Failures beyond the run the rule counts change
    nothing until the run is long enough, so they are not reported."""
    health, auth = _own_account(settings, "quiet", hours=1)
    url = receiver.url()
    receiver.script(url, OK, *[error(500)] * 8)
    async with delivery_worker(client, health) as worker, worker, api_with(health) as http:
        created = await http.post("/v1/endpoints", json={"url": url, "events": ["TRACKING_UPDATE"]}, headers=auth)
        endpoint_id = created.json()["id"]
        await delivery_outcome(client, first_connection_id(endpoint_id))
        results = []
        for _ in range(8):
            response = await http.post("/v1/events", json=tracking_event(), headers=auth)
            [delivery] = response.json()["deliveries"]
            results.append((await delivery_outcome(client, delivery["id"])).result)
        endpoint = (await http.get(f"/v1/endpoints/{endpoint_id}", headers=auth)).json()
        registry = client.get_workflow_handle(registry_workflow_id("quiet"))
        reports = [
            event
            async for event in registry.fetch_history_events()
            if event.workflow_execution_signaled_event_attributes.signal_name == "record_outcome"
        ]

    assert results == ["failed"] * 8
    assert endpoint["failed_deliveries_in_a_row"] == 3 and endpoint["disabled"] is False
    assert len(reports) == 3
