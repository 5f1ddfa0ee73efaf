"""Every workflow id the service makes, and what can be read back from one.

Ids are derived, not stored: a re-post of an event, a second recovery or a
retried activity computes the same id and finds the workflow already started,
which is what makes those steps idempotent.
"""

from __future__ import annotations

import re

DELIVERY_PREFIX = "delivery/"
FIRST_CONNECTION = "first-connection"
RECOVERED_SUFFIX = "/recovered"
_RERUN_SEGMENTS = re.compile(r"(/rerun-[0-9a-f]+|/recovered)+$")


def event_delivery_id(account: str, event_id: str, index: int) -> str:
    """The event's deliveries are numbered from 0 in the order their endpoints were
    subscribed at acceptance: derivable from the event alone, so a re-post finds them."""
    return f"{DELIVERY_PREFIX}{account}/{event_id}/{index}"


def notice_delivery_id(account: str, notice_id: str, endpoint_id: str) -> str:
    """A notice's delivery to one subscriber, named by the endpoint rather than its place in the
    list: a retried activity that finds the subscribers changed (one deleted) still starts each
    remaining one's delivery, once."""
    return f"{DELIVERY_PREFIX}{account}/{notice_id}/{endpoint_id}"


def first_connection_id(endpoint_id: str) -> str:
    """The ORDER_SHIPPED sample a new endpoint receives: one per endpoint, ever."""
    return f"{DELIVERY_PREFIX}{FIRST_CONNECTION}/{endpoint_id}"


def test_delivery_id(test_id: str, endpoint_id: str) -> str:
    return f"{DELIVERY_PREFIX}{test_id}/{endpoint_id}"


def rerun_id(delivery_id: str, token: str) -> str:
    """A re-run asked for by a person: a new id each time (`token` is random), under the first
    delivery of its chain (its `rerun_of` names the one it re-ran). Re-running a re-run by its
    own id made the id longer each time, until Temporal refused it (over 1,000 characters,
    after 64 re-runs: an outside probe) and the delivery could not be re-run again."""
    return f"{first_of_chain(delivery_id)}/rerun-{token}"


def first_of_chain(delivery_id: str) -> str:
    """The delivery a chain of re-runs and recoveries began with. No first delivery's id ends
    in one of their segments: its last part is an index or an endpoint id."""
    return _RERUN_SEGMENTS.sub("", delivery_id)


def recovered_id(delivery_id: str) -> str:
    """The re-run bulk recovery makes of a delivery: one at most, whoever asks how often."""
    return f"{delivery_id}{RECOVERED_SUFFIX}"


def recovery_workflow_id(endpoint_id: str, token: str) -> str:
    return f"recovery/{endpoint_id}/{token}"


def registry_workflow_id(account: str) -> str:
    """The entity workflow holding an account's endpoints."""
    return f"endpoints/{account}"


def is_delivery_id(workflow_id: str) -> bool:
    return workflow_id.startswith(DELIVERY_PREFIX)


def flow_workflow_id(account: str, endpoint_id: str) -> str:
    """The entity workflow keeping an endpoint's rate-limit schedule and FIFO queues."""
    return f"flow/{account}/{endpoint_id}"
