"""The receiver's port is closed for several retry intervals, then it comes back.

Deliveries with retries left succeed once it is back; those whose retries ran
out during the outage end failed, with every retry spent and the cause named.
"""

from __future__ import annotations

import httpx

from domain.ids import first_connection_id
from tests.conftest import free_port
from tests.faults.receivers import ScriptedReceiver
from tests.faults.stack import (
    api_process,
    create_endpoint,
    fixed_retries,
    outcomes,
    temporal_stack,
    wait_until,
    worker_process,
)
from tests.integration.helpers import tracking_event
from tests.receiver import BackgroundServer
from tests.waiting import eventually
from workflows.delivery import DeliveryWorkflow

REFUSED = "Endpoint unreachable: could not connect (Connection refused)"
INTERVAL = 0.5  # seconds between retries, fixed (backoff 1.0)


async def _pending_attempt(client, delivery_id: str) -> int:
    """Temporal's attempt number of the delivery's pending activity (0 when none is pending)."""
    description = await client.get_workflow_handle_for(DeliveryWorkflow.run, delivery_id).describe()
    return max((a.attempt for a in description.raw_description.pending_activities), default=0)


async def test_deliveries_resume_after_receiver_outage_and_exhausted_ones_fail(tmp_path):
    receiver = ScriptedReceiver()
    port = free_port()
    async with (
        temporal_stack(tmp_path, **fixed_retries(INTERVAL)) as stack,
        worker_process(stack),
        api_process(stack) as api_proc,
        httpx.AsyncClient(base_url=api_proc.url, timeout=30) as api,
    ):
        client = await stack.client()
        async with BackgroundServer(receiver, port) as server:
            receiver.base_url = server.url
            short_url, long_url, once_url = receiver.endpoint(), receiver.endpoint(), receiver.endpoint()
            short = await create_endpoint(api, short_url, max_retries=2)
            long = await create_endpoint(api, long_url, max_retries=10)
            once = await create_endpoint(api, once_url)  # retry disabled: one attempt
            firsts = [first_connection_id(e) for e in (short, long, once)]
            await wait_until(lambda: all(receiver.count(f) == 1 for f in firsts), 30, "the first connections")
        # The port is closed from here on: every connection is refused.

        accepted = (await api.post("/v1/events", json=tracking_event())).json()
        ids = {d["endpoint_id"]: d["id"] for d in accepted["deliveries"]}
        assert set(ids) == {short, long, once}

        # The outage outlasts the short endpoint's retries (and the once endpoint's single attempt) …
        ended = await outcomes(client, [ids[short], ids[once]], timeout=30)
        # … and a few more retry intervals of the long endpoint, counted by Temporal.
        await eventually(
            lambda: _pending_attempt(client, ids[long]),
            lambda attempt: attempt >= 5,
            15,
            "the long endpoint's 5th attempt, 4 refused ones behind it",
            interval=0.1,
        )

        async with BackgroundServer(receiver, port):  # back, on the same port
            [record] = (await outcomes(client, [ids[long]], timeout=30)).values()
            details = {d: (await api.get(f"/v1/deliveries/{d}")).json() for d in ids.values()}

    assert record.result == "success", record
    assert 4 <= record.retry <= 10, record.retry
    assert details[ids[long]]["result"] == "success"
    assert details[ids[long]]["retry"] == record.retry

    for endpoint_id, max_retries in ((short, 2), (once, 0)):
        failed = ended[ids[endpoint_id]]
        assert failed.result == "failed", failed
        assert failed.retry == max_retries, failed
        assert failed.error == REFUSED, failed.error
        assert failed.response is None
        detail = details[ids[endpoint_id]]
        assert (detail["result"], detail["retry"], detail["error"]) == ("failed", max_retries, REFUSED)

    # Refused connections never reached the receiver; the one that did is the successful POST.
    assert receiver.count(ids[long]) == 1
    assert receiver.count(ids[short]) == 0
    assert receiver.count(ids[once]) == 0
