"""`make test-under-load`: the whole suite N times in a row beside a busy loop on one core.

A flaky test is a bug; a busy machine is where flakes show (CI shares its two
cores with whatever else runs). Stops the busy loop by its PID, whatever happens.

python -m tests.under_load [RUNS]
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time


def _stop(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)  # so the busy loop is stopped on the way out


def main(runs: int) -> int:
    signal.signal(signal.SIGTERM, _stop)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    results = []
    try:
        for run in range(1, runs + 1):
            started = time.monotonic()
            code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
            results.append(code)
            print(f"[under-load] run {run}/{runs}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        busy.kill()
        busy.wait()
    return 0 if all(code == 0 for code in results) else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
