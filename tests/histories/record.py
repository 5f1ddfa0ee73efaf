"""Records the histories the replay test runs: `python -m tests.histories.record DIR NAME…`.

DIR is `next` for the unreleased code, or a new release's name at tagging.
Histories of released code are never recorded again: this writes only the
named histories that do not exist yet in DIR, and refuses to overwrite one.
Encrypted with a fixed, published test key (it protects nothing real).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx
from pydantic import SecretStr
from temporalio.client import WorkflowFailureError

from api.app import create_app
from devstack.devserver import start_dev_server, wait_until_serving
from domain.flow import FlowState
from domain.ids import first_connection_id, flow_workflow_id, recovered_id
from infra.temporal import connect
from services.deliveries import ended_record
from settings import Settings
from tests.conftest import free_port
from tests.integration.helpers import tracking_event
from tests.receiver import OK, BackgroundServer, Receiver, Reply, error
from tests.waiting import eventually
from worker import delivery_worker
from workflows.endpoint_flow import EndpointFlowWorkflow, OrderEnqueue

HERE = Path(__file__).parent
TEST_KEY = "cmVwbGF5LXRlc3Qta2V5LW5vdC1hLXNlY3JldC0zMmI="  # base64url of 32 bytes, public on purpose
TEST_SECRETS_KEY = "cmVwbGF5LXNlY3JldHMta2V5LW5vdC1zZWNyZXQtMzI="  # the same, for sealed credentials


async def _record(into: Path, names: set[str]) -> None:
    port = free_port()
    server = start_dev_server(port)
    address = f"127.0.0.1:{port}"
    settings = Settings(
        temporal_address=address,
        task_queue=f"record-{uuid.uuid4().hex[:6]}",
        encryption_key=SecretStr(TEST_KEY),
        secrets_key=SecretStr(TEST_SECRETS_KEY),
        allow_private_networks=True,
        retry_initial_interval=0.05,
        retry_backoff=1.0,
        http_timeout=2.0,
        log_format="text",
    )
    try:
        await wait_until_serving(address, server)
        client = await connect(settings)
        receiver = Receiver()
        async with (
            BackgroundServer(receiver, free_port()) as hooks,
            delivery_worker(client, settings) as worker,
            worker,
            BackgroundServer(create_app(settings), free_port()) as api_server,
            httpx.AsyncClient(base_url=api_server.url, timeout=30) as api,
        ):
            receiver.base_url = hooks.url
            url = receiver.url(error(503), OK)
            spec = {"url": url, "events": ["TRACKING_UPDATE"], "retry": {"enabled": True, "max_retries": 2}}
            endpoint = (await api.post("/v1/endpoints", json=spec)).json()
            first = first_connection_id(endpoint["id"])
            await ended_record(client.get_workflow_handle(first))
            # Four rotations: the last one keeps only the two newest earlier secrets (patch
            # previous-secrets-capped).
            for _ in range(4):
                await api.post(f"/v1/endpoints/{endpoint['id']}/secret")
            receiver.script(url, error(500))
            accepted = (await api.post("/v1/events", json=tracking_event(event_id="evt-replay-1"))).json()
            failed = accepted["deliveries"][0]["id"]
            await ended_record(client.get_workflow_handle(failed))
            receiver.script(url, OK)
            await api.post(
                f"/v1/endpoints/{endpoint['id']}/recover",
                json={"since": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
            )
            await api.patch(f"/v1/endpoints/{endpoint['id']}", json={"description": "recorded"})
            await api.delete(f"/v1/endpoints/{endpoint['id']}")
            # Each answer takes a second, so the later deliveries of the order wait for their turn.
            slow = receiver.url(OK, Reply(delay=1.0))
            ordered_spec = spec | {"url": slow, "ordering": "fifo", "rate_limit": {"per_second": 2}}
            ordered = (await api.post("/v1/endpoints", json=ordered_spec)).json()
            for n in range(3):
                event = tracking_event(event_id=f"evt-replay-fifo-{n}", order_id="replay-fifo")
                delivery_id = (await api.post("/v1/events", json=event)).json()["deliveries"][0]["id"]
            await ended_record(client.get_workflow_handle(delivery_id))
            await api.patch(f"/v1/endpoints/{ordered['id']}", json={"ordering": "none"})  # its ordering_off
            # A query is answered once the workflow task that took the signal has completed.
            await client.get_workflow_handle(flow_workflow_id("default", ordered["id"])).query("summary")
            # A 410 disables an endpoint, and the registry starts an ENDPOINT_DISABLED notice (a
            # child workflow) to the endpoint that subscribes to those.
            watching = receiver.url(OK)
            watcher = {"url": watching, "events": ["ENDPOINT_DISABLED"]}
            await ended_record(
                client.get_workflow_handle(
                    first_connection_id((await api.post("/v1/endpoints", json=watcher)).json()["id"])
                )
            )
            gone = (
                await api.post("/v1/endpoints", json={"url": receiver.url(error(410)), "events": ["ORDER_ERROR"]})
            ).json()
            await ended_record(client.get_workflow_handle(first_connection_id(gone["id"])))
            await receiver.wait_for(watching, 2)  # its first connection, then the notice
            await client.get_workflow_handle("endpoints/default").query("endpoints")  # the task has completed
            # A delivery cancelled during a retry (patch cancels-end-deliveries).
            answer = asyncio.Event()
            cancelled_url = receiver.url(OK, error(500), Reply(status=500, answer_when=answer))
            cancelled_spec = {"url": cancelled_url, "events": ["TRACKING_UPDATE"]} | {"retry": spec["retry"]}
            to_cancel = (await api.post("/v1/endpoints", json=cancelled_spec)).json()["id"]
            event = tracking_event(event_id="evt-replay-cancelled")
            accepted = (await api.post("/v1/events", json=event)).json()
            [cancelled] = [d["id"] for d in accepted["deliveries"] if d["endpoint_id"] == to_cancel]
            await receiver.wait_for(cancelled_url, 3)  # the first connection, the first attempt, a retry
            await client.get_workflow_handle(cancelled).cancel()
            with contextlib.suppress(WorkflowFailureError):
                await client.get_workflow_handle(cancelled).result()
            answer.set()
            # Deliveries to an endpoint whose last delivery failed make every attempt in the
            # activity (DeliveryInput.attempts_in_activity): a failure, then a success. The first
            # one's failed retry marks the endpoint's POSTs failing; the success clears them.
            failing_url = receiver.url(OK, error(500))
            failing_spec = {"url": failing_url, "events": ["TRACKING_UPDATE"], "retry": spec["retry"]}
            failing = (await api.post("/v1/endpoints", json=failing_spec)).json()["id"]
            await ended_record(client.get_workflow_handle(first_connection_id(failing)))
            in_activity = []
            for n, failures in enumerate((1, 2, 0)):
                if n == 2:
                    receiver.script(failing_url, OK)
                event = tracking_event(event_id=f"evt-replay-failing-{n}")
                accepted = (await api.post("/v1/events", json=event)).json()
                [delivery] = [d["id"] for d in accepted["deliveries"] if d["endpoint_id"] == failing]
                await ended_record(client.get_workflow_handle(delivery))
                in_activity.append(delivery)
                await eventually(
                    lambda: api.get(f"/v1/endpoints/{failing}"),
                    partial(_counts_failures, failures),
                    what="the registry counting the delivery",
                )
            # A schedule idle with an order queued by a delivery that does not run forgets it
            # and ends (patch forgets-ended-orders).
            left_queued = await client.start_workflow(
                EndpointFlowWorkflow.run,
                FlowState(account="default", endpoint_id="ep_left_queued", idle_close=timedelta(seconds=1)),
                id=flow_workflow_id("default", "ep_left_queued"),
                task_queue=settings.task_queue,
                start_signal="enqueue",
                start_signal_args=[OrderEnqueue(order_id="o1", delivery_ids=["delivery/default/ended-unseen"])],
            )
            await left_queued.result()
            recoveries = [e.id async for e in client.list_workflows('WorkflowType = "RecoveryWorkflow"')]
            recorded = {
                "delivery_retried_then_succeeded": first,
                "delivery_failed_after_retries": failed,
                "delivery_recovered": recovered_id(failed),
                # Of the first attempt run locally (patch first-attempt-local): a first-attempt
                # success, a failure after its retries, and a success after a retry.
                "local_first_attempt_succeeded": first_connection_id(failing),
                "local_first_then_failed_after_retries": failed,
                "local_first_then_retried_succeeded": first,
                "endpoint_registry": "endpoints/default",
                # With an ENDPOINT_DISABLED notice started as a child (its id is a command).
                "endpoint_registry_disabled_notice": "endpoints/default",
                # With a rotation that capped the earlier secrets still signing.
                "endpoint_registry_secrets_capped": "endpoints/default",
                # Started with the short-histories marker (its own continue-as-new limit).
                "endpoint_registry_short_histories": "endpoints/default",
                "recovery": recoveries[0],
                # Started in the first-attempt-local shape (DeliveryInput.first_attempt_local),
                # without its version marker.
                "in_shape_first_attempt_succeeded": first_connection_id(failing),
                "in_shape_failed_after_retries": failed,
                "in_shape_retried_succeeded": first,
                "endpoint_flow": flow_workflow_id("default", ordered["id"]),
                # Patches turn-signalled and signals-turn: the last of the order, woken when
                # its turn came, and the schedule that told it.
                "fifo_woken_by_its_turn": delivery_id,
                "endpoint_flow_signals_turns": flow_workflow_id("default", ordered["id"]),
                # Started in the shape that waits for its turn (DeliveryInput.waits_for_turn), and
                # the schedule told of the ordering switched off (patch tells-unordered).
                "fifo_woken_in_shape": delivery_id,
                "endpoint_flow_unordered": flow_workflow_id("default", ordered["id"]),
                "delivery_cancelled_in_a_retry": cancelled,
                # Started in the attempts-in-activity shape (its endpoint failing).
                "in_activity_failed_after_retries": in_activity[1],
                "in_activity_succeeded": in_activity[2],
                # A failed retry marked the failing endpoint's POSTs, and a success cleared them
                # (patch posts-failing-marked).
                "endpoint_registry_posts_failing": "endpoints/default",
                "endpoint_flow_forgets_ended_orders": left_queued.id,
                # Rate-limit slots given with a start's grace (patch keeps-slot-grace).
                "endpoint_flow_slot_grace": flow_workflow_id("default", ordered["id"]),
            }
            for name in sorted(names):
                path = into / f"{name}.json"
                if path.exists():
                    raise SystemExit(f"{path} exists: histories of released code are kept as they are")
                history = await client.get_workflow_handle(recorded[name]).fetch_history()
                path.write_text(history.to_json())
                print(f"recorded {name}: {recorded[name]}")
    finally:
        server.terminate()
        server.wait(30)


def _counts_failures(count: int, answer: httpx.Response) -> bool:
    return bool(answer.json()["failed_deliveries_in_a_row"] == count)


if __name__ == "__main__":
    target = HERE / sys.argv[1]
    target.mkdir(exist_ok=True)
    asyncio.run(_record(target, set(sys.argv[2:])))
    os._exit(0)  # the SDK runtime can crash at interpreter exit (sdk-python#300)
