"""`make bench`: the webhook pipeline measured against its two floors (Temporal alone, HTTP alone).

python -m bench [--events N] [--endpoints K] [--scale 1,4,10] [--backlog 5000] [--fairness-events 500] [--quick]

Every process (the Temporal dev server, the worker, the API, the receiver, the
floor worker; for the fairness phase, an API holding two accounts' tokens) runs
separately on free ports of 127.0.0.1, so CPU and memory are read per process
from /proc; each is stopped by its own PID when the run ends.
"""
