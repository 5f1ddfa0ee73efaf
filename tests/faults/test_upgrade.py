"""A release upgrade while deliveries wait for their retries: none breaks, none is lost.

The last release's own source (from git, at the commit `tests/histories/
releases.json` names) runs the API and a worker; deliveries fail their first
POSTs and wait in backoff; that worker is killed and the current one takes
over. Every delivery ends delivered, and no workflow task of any of them failed
(a change to a workflow's commands without `workflow.patched` fails them with
a non-determinism error).
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import tarfile
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType

from domain.ids import first_connection_id
from tests.conftest import free_port
from tests.faults.receivers import ScriptedReceiver
from tests.faults.stack import (
    ROOT,
    api_process,
    create_endpoint,
    fixed_retries,
    outcomes,
    temporal_stack,
    wait_until,
    worker_process,
)
from tests.integration.helpers import tracking_event
from tests.receiver import OK, BackgroundServer, error

RELEASES = ROOT / "tests" / "histories" / "releases.json"
EVENTS = 8


def last_release() -> tuple[str, str]:
    releases: dict[str, str] = json.loads(RELEASES.read_text())
    name = max(releases, key=lambda tag: tuple(int(n) for n in tag.lstrip("v").split(".")))
    return name, releases[name]


def release_source(commit: str, into: Path) -> Path:
    """The release's files, as `git archive` gives them (the commit is an ancestor of main,
    so a clone without tags has it too)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


async def test_deliveries_waiting_under_the_last_release_finish_on_the_current_worker(tmp_path):
    release, commit = last_release()
    old_code = release_source(commit, tmp_path / release)
    receiver = ScriptedReceiver()
    async with (
        temporal_stack(tmp_path, **fixed_retries(4.0)) as stack,
        BackgroundServer(receiver, free_port()) as server,
        api_process(stack, f"api-{release}", code=old_code) as api_proc,
        httpx.AsyncClient(base_url=api_proc.url, timeout=60) as api,
    ):
        receiver.base_url = server.url
        client = await stack.client()
        url = receiver.endpoint(error(500), error(500), OK)  # each delivery: two failures, then delivered
        async with worker_process(stack, f"worker-{release}", code=old_code) as old_worker:
            endpoint_id = await create_endpoint(api, url, max_retries=3)
            accepted = await asyncio.gather(*(api.post("/v1/events", json=tracking_event()) for _ in range(EVENTS)))
            deliveries = [first_connection_id(endpoint_id), *(a.json()["deliveries"][0]["id"] for a in accepted)]
            await wait_until(lambda: all(receiver.count(d) >= 1 for d in deliveries), 30, "every first POST")
            # Stopped as a release is rolled out: SIGTERM. On a busy machine the earliest
            # deliveries may be making their second POST by now; the old worker finishes and
            # records it. (SIGKILL would leave such a POST unrecorded: the at-least-once window
            # of the crash tests, not what an upgrade does.)
            await old_worker.shut_down(within=60)
        # The old worker is gone; every delivery waits for its retry, recorded by the old code.
        async with worker_process(stack, "worker-current") as current:
            records = await outcomes(client, deliveries, 90)
            histories = [await client.get_workflow_handle(d).fetch_history() for d in deliveries]
            log = current.log()

    assert {(r.result, r.retry) for r in records.values()} == {("success", 2)}
    failed_tasks = [
        d
        for d, h in zip(deliveries, histories, strict=True)
        if any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in h.events)
    ]
    assert failed_tasks == [], f"workflow tasks failed after the upgrade from {release}"
    assert "nondetermin" not in log.lower()
    assert all(receiver.count(d) == 3 for d in deliveries)
