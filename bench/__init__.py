"""`make bench`: the webhook pipeline measured against its two floors (Temporal alone, HTTP alone).

python -m bench [--events N] [--endpoints K] [--scale 1,4,10] [--backlog 20000] [--fairness-events 500] [--quick]
                [--stop-on-failure]
python -m bench --growth [--growth-workers 1,2,4] [--growth-stored 1000,10000,50000]

docs/benchmarks.md says what each phase measures, how long it takes and what was measured.

Every process (the Temporal dev server, the worker, the API, the receiver, the
floor worker; for the fairness phase, an API holding two accounts' tokens) runs
separately on free ports of 127.0.0.1, so CPU and memory are read per process
from /proc; each is stopped by its own PID when the run ends, or on SIGTERM or Ctrl-C.
"""
