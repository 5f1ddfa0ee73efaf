"""Wake-ups are a speed-up: when one fails, the change that sent it stands."""

from __future__ import annotations

import logging
import re

from temporalio.client import Client
from temporalio.service import RetryConfig

from devstack.devserver import start_dev_server, wait_until_serving
from infra.temporal import UpdateSlots
from services.flow import EndpointFlow
from tests.conftest import free_port

_FAIL_FAST = RetryConfig(max_retries=1, max_elapsed_time_millis=200)
# Which status a dead server gives (UNAVAILABLE, or another on a connection that broke
# mid-call) is the transport's; the log names it, not its number.
_NOT_TOLD = re.compile(r"Endpoint ep_waiting's waiting deliveries were not told to ask again: [A-Z_]+")


async def test_a_wake_up_that_fails_is_logged_and_the_change_stands(settings, caplog):
    """Switching ordering off (or deleting the endpoint) tells the waiting deliveries to ask
    again. Each would ask on its own within its re-check, so a signal that fails after the
    change was accepted (here: Temporal went away) is logged, not raised as a 503."""
    port = free_port()
    server = start_dev_server(port, search_attributes=False)
    try:
        await wait_until_serving(f"127.0.0.1:{port}", server)
        client = await Client.connect(f"127.0.0.1:{port}", retry_config=_FAIL_FAST)
        flow = EndpointFlow(client, settings.task_queue, "tests", UpdateSlots())
    finally:
        server.terminate()  # by its PID
        server.wait(30)

    with caplog.at_level(logging.WARNING, logger="services.flow"):
        await flow.ordering_off("ep_waiting")

    [record] = [r for r in caplog.records if r.name == "services.flow"]
    assert _NOT_TOLD.fullmatch(record.getMessage()), record.getMessage()
