"""Where a delivery makes its first POST: inside its workflow task (a local activity), or, when
its endpoint is failing (its last delivery failed, or its POSTs fail like an outage), paused,
rate-limited or ordered, in the retries' activity with every
attempt after it (domain.endpoints.starts_in_activity); and what each costs in Temporal Cloud
Actions, counted from the recorded history by Temporal's rules (domain.cloud_actions)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from temporalio.client import Client

from domain.cloud_actions import cloud_actions
from domain.ids import first_connection_id
from settings import Settings
from tests.integration.helpers import create_endpoint, delivery_outcome, post_event, tracking_event
from tests.integration.stacks import ready_endpoint, stack
from tests.receiver import OK, Receiver, Reply, error
from tests.waiting import eventually

LOCAL_ATTEMPT_MARKER = "core_local_activity"


async def _delivered(api: httpx.AsyncClient, client: Client) -> tuple[str, list[dict[str, Any]]]:
    """Post an event to the account's one endpoint; its delivery's id and recorded history, once it ended."""
    delivery_id = (await post_event(api, tracking_event()))["deliveries"][0]["id"]
    await delivery_outcome(client, delivery_id)
    history = await client.get_workflow_handle(delivery_id).fetch_history()
    events: list[dict[str, Any]] = json.loads(history.to_json())["events"]
    return delivery_id, events


def _local_attempts(events: list[dict[str, Any]]) -> int:
    return sum(
        1
        for e in events
        if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"
        and e["markerRecordedEventAttributes"]["markerName"] == LOCAL_ATTEMPT_MARKER
    )


def _activity_priorities(events: list[dict[str, Any]]) -> list[int]:
    return [
        e["activityTaskScheduledEventAttributes"]["priority"]["priorityKey"]
        for e in events
        if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]


async def _failed_in_a_row(api: httpx.AsyncClient, endpoint_id: str, count: int) -> None:
    await eventually(
        lambda: api.get(f"/v1/endpoints/{endpoint_id}"),
        lambda answer: answer.json()["failed_deliveries_in_a_row"] == count,
        what=f"{count} failed deliveries in a row",
    )


async def _posts_failing(api: httpx.AsyncClient, endpoint_id: str, failing: bool) -> dict[str, Any]:
    answer = await eventually(
        lambda: api.get(f"/v1/endpoints/{endpoint_id}"),
        lambda answer: (answer.json()["posts_failing_since"] is not None) is failing,
        what=f"POSTs failing: {failing}",
    )
    endpoint: dict[str, Any] = answer.json()
    return endpoint


async def test_an_endpoint_that_fails_gets_its_next_deliveries_in_the_activity_until_one_succeeds(
    api, client, receiver: Receiver
):
    url = receiver.url()
    endpoint = await create_endpoint(api, url, retry={"enabled": True, "max_retries": 2})
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    receiver.script(url, error(500))

    # A healthy endpoint's delivery tries inside its workflow task first; failing, it pays a
    # timer before its retries' activity: N + 4 Actions for N retries.
    _, first_failure = await _delivered(api, client)
    assert _local_attempts(first_failure) == 1
    assert sum(cloud_actions(first_failure).values()) == 2 + 4
    await _failed_in_a_row(api, endpoint["id"], 1)

    # Its endpoint failing, the next makes every attempt in the activity, behind first
    # attempts: no local attempt, no timer, N + 3 Actions.
    _, next_failure = await _delivered(api, client)
    assert _local_attempts(next_failure) == 0
    assert _activity_priorities(next_failure) == [3]
    actions = cloud_actions(next_failure)
    assert "timer started" not in actions
    assert sum(actions.values()) == 2 + 3, actions
    await _failed_in_a_row(api, endpoint["id"], 2)

    # The receiver is back: the success in the activity ends the run of failures (2 Actions),
    # and the delivery after it tries inside its workflow task again.
    receiver.script(url, OK)
    _, recovered = await _delivered(api, client)
    assert (_local_attempts(recovered), sum(cloud_actions(recovered).values())) == (0, 2)
    await _failed_in_a_row(api, endpoint["id"], 0)
    _, healthy_again = await _delivered(api, client)
    assert (_local_attempts(healthy_again), sum(cloud_actions(healthy_again).values())) == (1, 2)


async def test_a_rate_limited_endpoints_deliveries_start_in_the_activity_that_asks_its_schedule(
    api, client, receiver: Receiver
):
    """A local attempt may not ask the endpoint's schedule: it only handed over, one more
    workflow task and a marker (an Action) for each delivery."""
    url = receiver.url(OK)
    endpoint = await create_endpoint(api, url, rate_limit={"per_second": 50})
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    delivery_id, events = await _delivered(api, client)

    record = await delivery_outcome(client, delivery_id)
    assert (record.result, record.retry) == ("success", 0)
    assert _local_attempts(events) == 0
    assert sum(cloud_actions(events).values()) == 2


async def test_a_delivery_accepted_while_the_first_failure_still_retries_starts_in_the_activity(
    client: Client, settings: Settings, receiver: Receiver
) -> None:
    """A failed retry marks the endpoint at once: the registry need not wait for the failing
    delivery to end (its retries can take hours) to send the next ones to the activity."""
    async with stack(client, settings, http_timeout=30.0) as api:
        url = receiver.url()
        endpoint = await ready_endpoint(api, client, url, retry={"enabled": True, "max_retries": 2})
        held = asyncio.Event()  # its last retry's answer waits for the test
        receiver.script(url, error(500), error(500), Reply(status=500, answer_when=held))
        first = (await post_event(api, tracking_event()))["deliveries"][0]["id"]
        await receiver.wait_for(url, 1 + 3)  # the first connection, a first attempt, two retries
        marked = await _posts_failing(api, endpoint["id"], True)
        assert marked["failed_deliveries_in_a_row"] == 0  # the first is still retrying

        second = (await post_event(api, tracking_event()))["deliveries"][0]["id"]
        held.set()
        for delivery_id in (first, second):
            assert (await delivery_outcome(client, delivery_id)).result == "failed"
        history = await client.get_workflow_handle(second).fetch_history()
        assert _local_attempts(json.loads(history.to_json())["events"]) == 0


async def test_posts_failing_like_an_outage_send_the_next_deliveries_to_the_activity_with_the_health_rule_off(
    client: Client, settings: Settings, receiver: Receiver
) -> None:
    """The registry then counts no failed delivery: what marks the endpoint is a failed retry
    (as it is, with the rule on, while the first failed delivery is still retrying)."""
    async with stack(client, settings, disable_after_failures=0) as api:
        url = receiver.url()
        endpoint = await ready_endpoint(api, client, url, retry={"enabled": True, "max_retries": 2})

        # A one-off error, then a success at the retry: the endpoint is not marked.
        receiver.script(url, error(500), OK)
        _, one_off = await _delivered(api, client)
        assert _local_attempts(one_off) == 1
        # An edit after it: the registry has taken whatever the delivery sent it before.
        edited = await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"description": "after a one-off error"})
        assert edited.json()["posts_failing_since"] is None

        receiver.script(url, error(500))
        _, first_failure = await _delivered(api, client)
        assert (_local_attempts(first_failure), sum(cloud_actions(first_failure).values())) == (1, 2 + 4)
        marked = await _posts_failing(api, endpoint["id"], True)
        assert marked["failed_deliveries_in_a_row"] == 0  # the rule is off: nothing counted

        _, next_failure = await _delivered(api, client)
        assert (_local_attempts(next_failure), sum(cloud_actions(next_failure).values())) == (0, 2 + 3)

        receiver.script(url, OK)
        _, recovered = await _delivered(api, client)
        assert (_local_attempts(recovered), sum(cloud_actions(recovered).values())) == (0, 2)
        await _posts_failing(api, endpoint["id"], False)
        _, healthy_again = await _delivered(api, client)
        assert _local_attempts(healthy_again) == 1
