"""`make bench` counts honestly: a tiny run of the real harness (its own server, worker, API and
receiver processes) must show every (event, endpoint) received exactly once, matched by webhook-id."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.stats import FIRST_CONNECTION_PREFIX, exactly_once

ROOT = Path(__file__).resolve().parents[2]
EVENTS, ENDPOINTS = 4, 3


def test_the_exactly_once_check_sees_missing_duplicated_and_unexpected_posts():
    check = exactly_once(["a", "b", "c"], ["a", "b", "b", "x", f"{FIRST_CONNECTION_PREFIX}ep_1"])
    assert not check.ok
    assert (check.missing, check.duplicated, check.unexpected) == (["c"], {"b": 2}, ["x"])
    assert exactly_once(["a", "b"], ["b", "a", f"{FIRST_CONNECTION_PREFIX}ep_1"]).ok


def _received(ids: dict[str, list[str]]) -> Counter[str]:
    return Counter(r for r in ids["received"] if not r.startswith(FIRST_CONNECTION_PREFIX))


def test_a_tiny_benchmark_delivers_every_event_to_every_endpoint_exactly_once(tmp_path):
    command = [sys.executable, "-m", "bench", "--events", str(EVENTS), "--endpoints", str(ENDPOINTS)]
    command += ["--quick", "--repeat", "1", "--paced-seconds", "2", "--results-dir", str(tmp_path), "--dump-ids"]
    command += ["--fairness-events", str(EVENTS), "--fairness-b-events", "2"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"bench exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    ids = json.loads((tmp_path / "ids.json").read_text())
    results = json.loads((tmp_path / "latest.json").read_text())
    for run in ("pipeline", "paced", "http_floor"):
        accepted = ids[run]["accepted"]
        assert accepted and len(accepted) == len(set(accepted)), run
        # One POST per accepted delivery, none missing, none twice, nothing else.
        assert _received(ids[run]) == Counter(accepted), run
        assert results[run]["exactly_once"]["ok"], run

    # The main run covers every (event, endpoint) pair: delivery ids are delivery/{account}/{event}/{n},
    # one n per subscribed endpoint.
    pairs = [tuple(d.split("/")[2:]) for d in ids["pipeline"]["accepted"]]
    events = {event for event, _ in pairs}
    endpoints = {n for _, n in pairs}
    assert (len(events), endpoints) == (EVENTS, {str(n) for n in range(ENDPOINTS)})
    assert sorted(pairs) == sorted(itertools.product(events, endpoints))
    assert results["pipeline"]["deliveries"] == EVENTS * ENDPOINTS
    assert results["pipeline"]["workflow_status"] == {"COMPLETED": EVENTS * ENDPOINTS}
    assert results["temporal_floor"]["workflow_status"] == {"COMPLETED": EVENTS * ENDPOINTS}
    # Account A's burst and account B's events, idle and behind it, each received once.
    fairness = results["fairness"]["exactly_once"]
    assert fairness["ok"] and fairness["expected"] == EVENTS * ENDPOINTS + 2 * 2, fairness
    assert results["exactly_once_ok"] is True
    assert "pipeline / Temporal floor" in done.stdout
