"""Temporal Cloud Actions (its unit of billing) a workflow's recorded history accounts for.

The rules are Temporal's, from https://docs.temporal.io/cloud/actions (source:
temporalio/documentation, docs/evaluate/cloud/actions.mdx). What a history shows:

- workflow started (client start, child start, continue-as-new's new run): 1;
- timer started: 1;
- search attribute upsert: 1 per UpsertSearchAttributes command, however many attributes;
  the `TemporalChangeVersion` attribute that versioning (`workflow.patched`) sets is exempt;
- activity started or retried: 1 per run (a history records an activity's last run only,
  with its attempt number: that number is its runs);
- local activities: every RecordMarker of one workflow task together is 1 (the rule is
  the markers', so a version marker counts when no local activity shares its task), and
  each workflow task heartbeat a long local activity forces is 1 more;
- signal received, update accepted, workflow execution options updated: 1 each;
- start child workflow: 2, one here and one as the child's own start;
- Nexus operation scheduled or cancel requested: 1.

Not in a history, so not counted here: queries, activity heartbeats that reach the server
(the SDK sends a run's first at once, later ones at most every 80 % of the heartbeat
timeout), rejected updates, exports, schedules; and the namespace's Fairness, which
`with_fairness` adds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

VERSION_ATTRIBUTE = "TemporalChangeVersion"

# "For each hour a Namespace has the Fairness feature enabled, an additional 0.1 Action is
# charged per Action in the Namespace" (the same page, "Fairness"). Fairness between
# accounts (issue 12) needs the feature on in Temporal Cloud.
FAIRNESS_SURCHARGE = 0.1

# One Action for each event of these types.
_ONE_EACH = {
    "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED": "workflow started",
    "EVENT_TYPE_TIMER_STARTED": "timer started",
    "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED": "signal",
    "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED": "update",
    "EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED": "workflow options updated",
    "EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED": "child workflow started",
    "EVENT_TYPE_NEXUS_OPERATION_SCHEDULED": "nexus operation",
    "EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUESTED": "nexus operation",
}
_WFT_COMPLETED = "EVENT_TYPE_WORKFLOW_TASK_COMPLETED"
_WFT_SCHEDULED = "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED"


def cloud_actions(events: Sequence[Mapping[str, Any]]) -> Counter[str]:
    """Actions by kind for a history's events (as `WorkflowHistory.to_json()` writes them);
    `sum(result.values())` is the total."""
    actions: Counter[str] = Counter()
    marker_tasks: set[str] = set()
    for index, event in enumerate(events):
        kind = event["eventType"]
        if kind in _ONE_EACH:
            actions[_ONE_EACH[kind]] += 1
        elif kind == "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
            fields = _attributes(event).get("searchAttributes", {}).get("indexedFields", {})
            if set(fields) - {VERSION_ATTRIBUTE}:
                actions["search attribute upsert"] += 1
        elif kind == "EVENT_TYPE_ACTIVITY_TASK_STARTED":
            actions["activity run"] += int(_attributes(event).get("attempt", 1))
        elif kind == "EVENT_TYPE_MARKER_RECORDED":
            marker_tasks.add(str(_attributes(event).get("workflowTaskCompletedEventId")))
        elif kind == _WFT_COMPLETED and _forced_next_task(events, index):
            actions["workflow task heartbeat"] += 1
    if marker_tasks:
        actions["markers (local activities, versions)"] = len(marker_tasks)
    return actions


def _attributes(event: Mapping[str, Any]) -> Mapping[str, Any]:
    found: Mapping[str, Any] = next((v for k, v in event.items() if k.endswith("EventAttributes")), {})
    return found


def _forced_next_task(events: Sequence[Mapping[str, Any]], completed_at: int) -> bool:
    """Whether the workflow task completed at `completed_at` was a heartbeat: the next one was
    scheduled with nothing new for it (no activity result, timer, signal…), which only a
    worker asking for it (a local activity still running) does."""
    completed_id = str(events[completed_at]["eventId"])
    for event in events[completed_at + 1 :]:
        if str(_attributes(event).get("workflowTaskCompletedEventId")) == completed_id:
            continue  # a command of that task
        return bool(event["eventType"] == _WFT_SCHEDULED)
    return False


def with_fairness(actions: float) -> float:
    """What `actions` cost in a namespace with Fairness enabled."""
    return round(actions * (1 + FAIRNESS_SURCHARGE), 2)
