"""Determinism guard: recorded histories of every workflow replay on the current code.

A change that would break running workflows (a different command order, a new
activity, a clock read) fails here. Record new histories with
`python -m tests.histories.record` only after a deliberate, versioned change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from infra.codec import AesGcmCodec, data_converter, parse_key
from tests.histories.record import TEST_KEY
from worker import WORKFLOWS, workflow_runner

HISTORIES = {
    path.stem: WorkflowHistory.from_json(path.stem, path.read_text())
    for path in sorted((Path(__file__).parents[1] / "histories").glob("*.json"))
}


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
