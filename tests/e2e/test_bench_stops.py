"""`python -m bench` stops what it started and does not wait on POSTs that will never come:
a SIGTERM mid-run leaves none of its processes behind, and a phase whose deliveries end failed
says so within seconds instead of at its completion timeout."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from bench.phases import STALL_S, completion_timeout
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--events", "3", "--endpoints", "2", "--quick", "--repeat", "1", "--paced-seconds", "2"]
TINY += ["--fairness-events", "0"]


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`, from each process's parent in /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill_leftovers(pids: set[int]) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


async def test_sigterm_to_the_bench_stops_every_process_it_started(tmp_path: Path) -> None:
    log = tmp_path / "bench.log"
    with log.open("wb") as out:
        bench = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench", *TINY, "--results-dir", str(tmp_path), cwd=ROOT, stdout=out, stderr=out
        )
    children: set[int] = set()
    try:

        async def logged() -> str:
            assert bench.returncode is None, log.read_text()
            return log.read_text()

        # Every process is up once the first phase begins.
        text = await eventually(logged, lambda t: "HTTP floor" in t, timeout=120, what="the first phase")
        listed = dict(re.findall(r"(\w+) (\d+)", text.split("processes: ", 1)[1].split("\n", 1)[0]))
        assert set(listed) == {"server", "receiver", "worker", "floor_worker", "api"}, listed
        children = _descendants(bench.pid)
        assert {int(pid) for pid in listed.values()} <= children

        bench.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bench.wait(), 120) == 128 + signal.SIGTERM, log.read_text()
        assert "SIGTERM: stopping every process the run started" in log.read_text()
        assert [pid for pid in children if _alive(pid)] == [], "left running after SIGTERM"
    finally:
        if bench.returncode is None:
            bench.kill()
            await bench.wait()
        _kill_leftovers(children)


def test_a_phase_whose_deliveries_end_failed_is_reported_at_once(tmp_path: Path) -> None:
    # One more endpoint on a port nothing listens on, retries off: each event's delivery
    # to it ends failed, and its POST never reaches the receiver.
    command = [sys.executable, "-m", "bench", *TINY, "--results-dir", str(tmp_path)]
    command += ["--failing-endpoint", "--stop-on-failure"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 1, output
    assert "STOPPED: pipeline max0: every delivery ended; the receiver got 6 of 9 POSTs" in done.stdout, output

    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["exactly_once_ok"] is False
    stopped = results["stopped"]
    assert (stopped["phase"], stopped["count"]) == ("pipeline", 3), stopped
    assert all(d.endswith("/2") for d in stopped["ids"]), stopped  # the third endpoint's deliveries
    assert "deliveries ended without reaching the receiver" in done.stderr, output
    # Reported a few stalls' length after the last 202, not at the phase's completion timeout.
    assert stopped["seconds_after_last_202"] < 5 * STALL_S < completion_timeout(9), stopped
