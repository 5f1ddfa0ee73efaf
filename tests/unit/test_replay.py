"""Determinism guard: recorded histories of every workflow replay on the current code.

A change that would break running workflows (a different command order, a new
activity, a clock read) fails here. `tests/histories/<release>/` holds what each
released version recorded, kept for good; `next/` what the unreleased code
recorded of workflows no release has yet (see README, "Releasing").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from domain.activity_contract import AttemptInput, AttemptProgress
from infra.codec import AesGcmCodec, data_converter, parse_key
from tests.histories.record import TEST_KEY
from worker import WORKFLOWS, workflow_runner

ROOT = Path(__file__).parents[1] / "histories"
HISTORIES = {
    f"{path.parent.name}/{path.stem}": WorkflowHistory.from_json(path.stem, path.read_text())
    for path in sorted(ROOT.glob("*/*.json"))
}


def test_every_release_has_its_histories():
    releases = json.loads((ROOT / "releases.json").read_text())

    assert releases and all(len(list((ROOT / name).glob("*.json"))) >= 5 for name in releases)


def test_every_workflow_has_a_recorded_history():
    started = [h.events[0].workflow_execution_started_event_attributes for h in HISTORIES.values()]

    assert {s.workflow_type.name for s in started} == {w.__name__ for w in WORKFLOWS}


@pytest.mark.parametrize("name", HISTORIES)
async def test_recorded_history_replays_on_current_code(name: str):
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=data_converter(AesGcmCodec(parse_key(TEST_KEY))),
        workflow_runner=workflow_runner(),
    )

    await replayer.replay_workflow(HISTORIES[name])


def test_inputs_recorded_by_the_last_release_still_validate():
    """What v0.2.0 scheduled and started (still waiting for retries at an upgrade) reads on this code."""
    old_attempt = {
        "delivery_id": "delivery/default/evt-1/0",
        "webhook_id": "delivery/default/evt-1/0",
        "account": "default",
        "endpoint_id": "ep_1",
        "body": "{}",
        "max_posts": 4,
    }
    attempt = AttemptInput.model_validate(old_attempt)
    progress = AttemptProgress.model_validate({"posts": 2, "last": None})

    assert (attempt.message_id, attempt.max_attempts, progress.attempts) == ("delivery/default/evt-1/0", 4, 2)
