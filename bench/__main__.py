"""`make bench`: see bench/__init__.py. Exits 1 when any delivery was not received exactly once."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import backlog as backlog_phase
from bench import growth, histories
from bench.fairness import fairness as fairness_phase
from bench.phases import Bench, http_floor, log, pipeline, temporal_floor
from bench.procs import ROOT, Stack
from bench.rate_limit import rate_limits
from bench.report import ratios, render, targets
from tests.conftest import free_port

# Where the failing endpoints' retries wait: long enough that none comes due during the run
# (20,000 first attempts took 13 min here, and the fairness phase follows: with 600 s the first
# retries came due and reached the fairness phase's receiver).
BACKLOG_RETRY_INTERVAL = "3600"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, default=100, help="N: events of the main pipeline run")
    parser.add_argument("--endpoints", type=int, default=4, help="K: endpoints subscribed to every event")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (API posts, starts, POSTs)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="Temporal floor and pipeline runs, interleaved; medians are reported"
    )
    parser.add_argument("--scale", default="1,4,10", help="growth runs, as multiples of N ('1' skips growth)")
    parser.add_argument("--backlog", type=int, default=20_000, help="deliveries left in backoff (0 skips)")
    parser.add_argument("--backlog-endpoints", type=int, default=10, help="failing endpoints of the backlog")
    parser.add_argument("--paced-seconds", type=float, default=20.0, help="length of the run at half max rate")
    parser.add_argument(
        "--fairness-events", type=int, default=500, help="account A's burst, to K endpoints each (0 skips fairness)"
    )
    parser.add_argument("--fairness-b-events", type=int, default=20, help="account B's events, idle and behind A")
    parser.add_argument("--quick", action="store_true", help="no growth runs, no backlog, a smaller burst for fairness")
    parser.add_argument(
        "--growth",
        action="store_true",
        help="only the growth tables: --growth-workers, then the log page at --growth-stored (growth.json)",
    )
    parser.add_argument("--growth-workers", default="1,2,4", help="worker counts of the growth run")
    parser.add_argument("--growth-stored", default="1000,10000,50000", help="deliveries stored for the log page")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--dump-ids", action="store_true", help="also write each run's accepted and received ids")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server db, logs)")
    parser.add_argument(
        "--stop-on-failure",
        action="store_true",
        help="stop at the first phase whose deliveries ended without reaching the receiver (default: go on)",
    )
    parser.add_argument(
        "--failing-endpoint",
        action="store_true",
        help="self-check: subscribe one more endpoint at a port nothing listens on (retries off), "
        "so the pipeline's deliveries to it end failed and the run must say so at once",
    )
    args = parser.parse_args(argv)
    args.scales = sorted({int(s) for s in args.scale.split(",") if s.strip()} | {1})
    if args.quick:
        args.scales, args.backlog = [1], 0
        args.fairness_events = min(args.fairness_events, 200)
    return args


def _limits(connections: int) -> httpx.Limits:
    # Idle connections are dropped well before uvicorn's 5 s keep-alive closes them from its side,
    # which would otherwise race a request sent on a connection the server is closing.
    return httpx.Limits(max_connections=connections, keepalive_expiry=1.0)


class PhaseFailed(RuntimeError):
    """A phase's deliveries ended without reaching the receiver, and --stop-on-failure was given."""

    def __init__(self, phase: str, ended: dict[str, Any]) -> None:
        super().__init__(ended["message"])
        self.report = {"phase": phase, **ended}


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _strip_ids(
    phase: dict[str, Any], dumps: dict[str, Any], name: str, args: argparse.Namespace | None = None
) -> dict[str, Any]:
    dumps[name] = {"accepted": phase.pop("delivery_ids", []), "received": phase.pop("received_ids", [])}
    rate = next(phase[k] for k in ("deliveries_per_s", "workflows_per_s", "posts_per_s") if k in phase)
    foreign = round(100 * phase["foreign_cpu_share"])
    _log(f"  {name}: {rate}/s over {phase['duration_s']} s (other work took {foreign}% of the machine)")
    ended = phase.get("ended_undelivered")
    if ended and args is not None and args.stop_on_failure:
        raise PhaseFailed(name, ended)
    return phase


async def run(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, Any]:
    """Fills `results` as phases end (so an interrupted run still has what it measured)."""
    workdir = Path(tempfile.mkdtemp(prefix="webhooks-bench-"))
    stack = Stack(workdir, worker_env={"WEBHOOKS_RETRY_INITIAL_INTERVAL": BACKLOG_RETRY_INTERVAL})
    started = time.monotonic()
    results |= _run_header(args)
    dumps: dict[str, Any] = {}
    try:
        async with _bench(stack, "r", args.concurrency) as bench:
            await _setup(bench, args.endpoints)
            if args.failing_endpoint:
                await _add_failing_endpoint(bench)
            m = args.events * args.endpoints
            _log(f"HTTP floor: {m} POSTs")
            results["http_floor"] = _strip_ids(await http_floor(bench, m), dumps, "http_floor")
            # Floor and pipeline alternate, so drift in the machine or the growing database
            # weighs on both alike; each is reported by its median run.
            floors, mains = [], []
            for rep in range(args.repeat):
                suffix = f"#{rep + 1}" if rep else ""
                _log(f"Temporal floor{suffix}: {m} workflows")
                floors.append(
                    _strip_ids(await temporal_floor(bench, m, f"floor{rep}"), dumps, f"temporal_floor{suffix}")
                )
                _log(f"pipeline{suffix}: {args.events} events x {args.endpoints} endpoints")
                mains.append(
                    _strip_ids(await pipeline(bench, f"max{rep}", args.events), dumps, f"pipeline{suffix}", args)
                )
            results["temporal_floor"] = _median_run(floors, "workflows_per_s")
            main = _median_run(mains, "deliveries_per_s") | {"scale": 1}
            results["pipeline"] = main
            results["repeats"] = {
                "temporal_floor_workflows_per_s": [f["workflows_per_s"] for f in floors],
                "pipeline_deliveries_per_s": [p["deliveries_per_s"] for p in mains],
                "exactly_once_ok": all(p["exactly_once"]["ok"] and not p.get("post_failures") for p in mains),
            }
            recorded = args.results_dir / "histories"
            results["history"] = await histories.history_costs(bench, dumps["pipeline"]["accepted"], recorded)
            results["probes_idle"] = await backlog_phase.probes(bench)
            rate = round(0.5 * main["deliveries_per_s"] / args.endpoints, 2)
            paced_events = max(1, round(rate * args.paced_seconds))
            _log(f"paced: {paced_events} events at {rate}/s")
            paced = await pipeline(bench, "paced", paced_events, rate=rate)
            results["paced"] = _strip_ids(paced, dumps, "paced", args)
            _log("rate limits: 1 endpoint at 10/s, 50 at 0.2/s")
            results["rate_limit"] = await rate_limits(bench)
            results["growth"] = [results["pipeline"]]
            for scale in args.scales[1:]:
                _log(f"growth: {scale} x {args.events} events")
                grown = await pipeline(bench, f"x{scale}", scale * args.events)
                results["growth"].append(_strip_ids(grown, dumps, f"x{scale}", args) | {"scale": scale})
            _log("failure: deliveries to an endpoint answering 500, after 2 retries")
            results["failure"] = await histories.failure_costs(bench, recorded)
            if args.backlog > 0:
                _log(f"backlog: {args.backlog} deliveries into backoff")
                results["backlog"] = await backlog_phase.backlog(bench, args.backlog, args.backlog_endpoints)
            # Last, so the other phases measure what they did before it (the log's rows, for one).
            # The backlog's retries come due an hour after its first attempts, well after this.
            if args.fairness_events > 0:
                _log(f"fairness: account B, idle and behind account A's {args.fairness_events} events")
                results["fairness"] = await fairness_phase(bench, args.fairness_events, args.fairness_b_events)
    finally:
        stack.stop()
        if args.keep:
            _log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["wall_s"] = round(time.monotonic() - started, 1)
    results["ratios"] = ratios(results)
    results["targets"] = targets(results)
    results["exactly_once_ok"] = all(_exactly_once_checks(results))
    if args.dump_ids:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        (args.results_dir / "ids.json").write_text(json.dumps(dumps))
    return results


async def _setup(bench: Bench, endpoints: int) -> None:
    """K endpoints on the receiver, each first connection received (so the worker is up), then warm-ups."""
    since = await bench.received_total()
    for i in range(endpoints):
        body = {"url": f"{bench.stack.receiver_url}/ok/ep{i}", "events": ["TRACKING_UPDATE"]}
        response = await bench.api.post("/v1/endpoints", json=body)
        response.raise_for_status()
        bench.endpoints.append(response.json()["id"])
    await bench.wait_received(since, endpoints, 60, "first connections")
    _log("warming up")
    await temporal_floor(bench, 20, label="warm")
    warm = await pipeline(bench, "warm", 5)
    if not warm["exactly_once"]["ok"]:
        raise RuntimeError(f"warm-up deliveries were not received exactly once: {warm['exactly_once']}")


async def _add_failing_endpoint(bench: Bench) -> None:
    """An endpoint nothing answers (a free port, retries off): each delivery to it ends failed."""
    body = {"url": f"http://127.0.0.1:{free_port()}/refused", "events": ["TRACKING_UPDATE"]}
    response = await bench.api.post("/v1/endpoints", json=body)
    response.raise_for_status()
    bench.endpoints.append(response.json()["id"])


async def run_growth(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, Any]:
    """`--growth`: the worker counts, then the log as deliveries are stored (see bench/growth.py)."""
    workdir = Path(tempfile.mkdtemp(prefix="webhooks-bench-growth-"))
    stack = Stack(workdir)
    started = time.monotonic()
    results |= _run_header(args)
    try:
        async with _bench(stack, "g", args.concurrency) as bench:
            await _setup(bench, args.endpoints)
            counts = sorted({int(c) for c in args.growth_workers.split(",") if c.strip()})
            results["workers"] = await growth.workers_table(bench, args.events, counts)
            sizes = sorted({int(c) for c in args.growth_stored.split(",") if c.strip()})
            results["log"] = await growth.log_table(bench, sizes)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    results["wall_s"] = round(time.monotonic() - started, 1)
    return results


def _median_run(runs: list[dict[str, Any]], rate: str) -> dict[str, Any]:
    """The run with the median rate (the lower middle one of an even count)."""
    ranked = sorted(runs, key=lambda r: float(r[rate]))
    return ranked[(len(ranked) - 1) // 2] | {"runs": len(runs)}


def _exactly_once_checks(results: dict[str, Any]) -> list[bool]:
    phases = [results["http_floor"], results["pipeline"], results["paced"], *results["growth"]]
    checks = [p["exactly_once"]["ok"] and not p.get("post_failures") for p in phases]
    checks.append(results["repeats"]["exactly_once_ok"])
    if "backlog" in results:
        checks.append(results["backlog"]["first_attempts_exactly_once"]["ok"])
    if "fairness" in results:
        checks.append(results["fairness"]["exactly_once"]["ok"])
    return checks


def _run_header(args: argparse.Namespace) -> dict[str, Any]:
    """When, on what and with which arguments a run was made."""
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "config": {k: str(v) for k, v in vars(args).items()},
    }


@asynccontextmanager
async def _bench(stack: Stack, run_prefix: str, concurrency: int) -> AsyncIterator[Bench]:
    """The started stack, its PIDs logged, with HTTP clients for its API and its receiver."""
    client = await stack.start()
    _log("processes: " + ", ".join(f"{name} {pid}" for name, pid in stack.pids().items()))
    async with (
        httpx.AsyncClient(base_url=stack.api_url, timeout=60, limits=_limits(400)) as api,
        httpx.AsyncClient(base_url=stack.receiver_url, timeout=60, limits=_limits(10)) as rx,
    ):
        yield Bench(stack, client, api, rx, f"{run_prefix}{uuid.uuid4().hex[:6]}", concurrency)


def _log(message: str) -> None:
    log(message)


async def _run_until_signalled(args: argparse.Namespace, results: dict[str, Any]) -> dict[str, Any]:
    """`run`, cancelled by SIGTERM or SIGINT (Ctrl-C), so that its `finally` stops every process
    it started: they run in their own sessions, and a terminal's Ctrl-C does not reach them."""
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if not received:
            _log(f"{signal.Signals(signum).name}: stopping every process the run started")
        received.append(signum)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await (run_growth if args.growth else run)(args, results)
    except asyncio.CancelledError:
        if received:
            raise Interrupted(received[0]) from None
        raise


def _write(args: argparse.Namespace, results: dict[str, Any], name: str = "latest") -> None:
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")


def main() -> None:
    args = parse_args()
    results: dict[str, Any] = {}
    try:
        asyncio.run(_run_until_signalled(args, results))
    except Interrupted as stopped:
        sys.stderr.flush()
        os._exit(128 + stopped.signum)
    except asyncio.CancelledError:  # a signal while the processes were already being stopped
        os._exit(128 + signal.SIGTERM)
    except PhaseFailed as failed:
        # What was measured until then is kept, marked as a stopped run.
        _write(args, results | {"stopped": failed.report, "exactly_once_ok": False})
        print(f"STOPPED: {failed}")
        sys.stdout.flush()
        os._exit(1)
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)
    if args.growth:
        _write(args, results, "growth")
        rendered = growth.render_growth(results)
        (args.results_dir / "growth.txt").write_text(rendered + "\n")
        print(rendered)
        sys.stdout.flush()
        os._exit(0 if all(r["exactly_once_ok"] for r in results["workers"]) else 1)
    _write(args, results)
    rendered = render(results)
    (args.results_dir / "latest.txt").write_text(rendered + "\n")
    print(rendered)
    print(f"\nresults: {args.results_dir / 'latest.json'}; total {results['wall_s']} s")
    if not results["exactly_once_ok"]:
        print("FAILED: some delivery was not received exactly once (see exactly_once in the JSON)")
    sys.stdout.flush()
    # The SDK's runtime can crash at interpreter exit (sdk-python#300); leave cleanly.
    os._exit(0 if results["exactly_once_ok"] else 1)


if __name__ == "__main__":
    main()
