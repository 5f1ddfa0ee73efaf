"""What a delivery costs in Temporal: history events, bytes and Temporal Cloud Actions,
measured on the recorded histories (tests/histories; see domain/cloud_actions.py for the rules).

The recordings (tests/histories/record.py): a first-attempt 200 (the recovered delivery); a
delivery whose receiver answers 500 to its 3 POSTs (2 retries, failed); and a first
connection answered 503 then 200 (1 retry, delivered).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory

from domain.cloud_actions import cloud_actions, with_fairness

ROOT = Path(__file__).parents[1] / "histories"


def _events(name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads((ROOT / f"{name}.json").read_text())["events"]
    return events


def _actions(name: str) -> int:
    return sum(cloud_actions(_events(name)).values())


def _size(name: str) -> tuple[int, int]:
    """Events, and bytes as Temporal stores them (protobuf, payloads encrypted)."""
    path = ROOT / f"{name}.json"
    history = WorkflowHistory.from_json(name, path.read_text())
    return len(history.events), sum(event.ByteSize() for event in history.events)


def test_a_first_attempt_success_run_locally_costs_6_events_and_2_actions():
    events, size = _size("next/in_shape_first_attempt_succeeded")
    patched, _ = _size("next/local_first_attempt_succeeded")  # the same shape, asked by a version marker
    before, size_before = _size("v0.2.0/delivery_recovered")  # the same delivery, first attempt an activity

    # Started, one workflow task (the local activity's marker), completed. Asking for the shape
    # by `workflow.patched` added a version marker and its TemporalChangeVersion upsert.
    assert (events, patched, before) == (6, 8, 11)
    assert size < 9_000 and size_before < 9_000  # measured: 7,539 and 7,348 bytes
    # Workflow started, and the marker of its one workflow task.
    for name in ("next/in_shape_first_attempt_succeeded", "next/local_first_attempt_succeeded"):
        assert cloud_actions(_events(name)) == {"workflow started": 1, "markers (local activities, versions)": 1}
    assert _actions("v0.2.0/delivery_recovered") == 2  # workflow started, activity started


def test_a_namespace_with_fairness_pays_a_tenth_more_for_every_action():
    # Temporal Cloud bills 0.1 Action more per Action while Fairness is on (issue 12 needs it).
    assert with_fairness(_actions("next/in_shape_first_attempt_succeeded")) == 2.2
    assert with_fairness(_actions("next/in_shape_failed_after_retries")) == 6.6


@pytest.mark.parametrize(
    ("name", "retries"),
    [
        ("next/in_shape_failed_after_retries", 2),
        ("next/in_shape_retried_succeeded", 1),
        ("next/local_first_then_failed_after_retries", 2),
        ("next/local_first_then_retried_succeeded", 1),
    ],
)
def test_a_delivery_with_n_retries_costs_n_plus_4_actions(name: str, retries: int):
    """Started, the first workflow task's markers, the timer until the first retry, one activity
    run per retry, the outcome's search attributes: N + 4. The target was N + 3; the wait before
    the first retry costs the one more (a timer, or an activity run that only waits: both billed).
    Only the first failures of an endpoint cost it: see the shape below."""
    actions = cloud_actions(_events(name))

    assert actions["activity run"] == retries
    assert actions["timer started"] == 1
    assert sum(actions.values()) == retries + 4


def test_a_delivery_making_every_attempt_in_the_activity_costs_n_plus_3_actions():
    """Accepted for an endpoint already failing: no local attempt, so no timer before the
    retries; the activity's retry policy waits the backoff (13 events, measured 22,585 bytes).
    Its success at once costs 2, as a local one does (11 events, 9,165 bytes)."""
    failed = cloud_actions(_events("next/in_activity_failed_after_retries"))
    assert failed == {"workflow started": 1, "activity run": 3, "search attribute upsert": 1}
    assert sum(failed.values()) == 2 + 3
    assert _size("next/in_activity_failed_after_retries")[0] == 13
    assert _actions("next/in_activity_succeeded") == 2
    assert _size("next/in_activity_succeeded")[0] == 11


def test_the_retry_shape_before_it_cost_more():
    """Of the previous shape (first attempt an activity, then timer and retries' activity): its
    version markers came in two more workflow tasks (1 retry: 7 Actions where now 5)."""
    assert _actions("next/delivery_retried_then_succeeded") == 7
    assert _size("next/delivery_retried_then_succeeded")[0] == 27
    assert _size("next/local_first_then_retried_succeeded")[0] == 20
    assert _size("next/in_shape_retried_succeeded")[0] == 18


def _event(event_id: int, kind: str, **attributes: Any) -> dict[str, Any]:
    return {"eventId": str(event_id), "eventType": f"EVENT_TYPE_{kind}", "someEventAttributes": attributes}


def test_the_rules_on_a_made_up_history():
    completed = {"workflowTaskCompletedEventId": "4"}
    events = [
        _event(1, "WORKFLOW_EXECUTION_STARTED"),
        _event(2, "WORKFLOW_TASK_SCHEDULED"),
        _event(3, "WORKFLOW_TASK_STARTED"),
        # A long local activity: the worker completes the task to keep it alive (a heartbeat).
        _event(4, "WORKFLOW_TASK_COMPLETED"),
        _event(5, "WORKFLOW_TASK_SCHEDULED"),
        _event(6, "WORKFLOW_TASK_STARTED"),
        _event(7, "WORKFLOW_TASK_COMPLETED"),
        _event(8, "MARKER_RECORDED", workflowTaskCompletedEventId="7"),
        _event(9, "MARKER_RECORDED", workflowTaskCompletedEventId="7"),
        _event(
            10, "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES", searchAttributes={"indexedFields": {"TemporalChangeVersion": {}}}
        ),
        _event(11, "ACTIVITY_TASK_SCHEDULED", workflowTaskCompletedEventId="7"),
        _event(12, "ACTIVITY_TASK_STARTED", attempt=3),
        _event(13, "ACTIVITY_TASK_COMPLETED"),
        _event(14, "WORKFLOW_EXECUTION_SIGNALED"),
        _event(15, "WORKFLOW_TASK_SCHEDULED"),
        _event(16, "WORKFLOW_TASK_STARTED"),
        _event(17, "WORKFLOW_TASK_COMPLETED"),
        _event(18, "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES", searchAttributes={"indexedFields": {"WebhookResult": {}}}),
        _event(19, "WORKFLOW_PROPERTIES_MODIFIED", **completed),
        _event(20, "WORKFLOW_EXECUTION_COMPLETED"),
    ]

    assert cloud_actions(events) == {
        "workflow started": 1,
        "workflow task heartbeat": 1,
        "markers (local activities, versions)": 1,  # two markers, one task
        "activity run": 3,
        "signal": 1,
        "search attribute upsert": 1,  # the version's is exempt; a memo change is no Action
    }
