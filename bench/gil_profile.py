"""Where a worker's Python time goes, from a py-spy raw profile taken with --gil.

    py-spy record -p <worker pid> -d 10 -r 200 --gil -f raw -o worker.txt
    python -m bench.gil_profile worker.txt <units completed while sampling>

Each sample is attributed to the innermost frame that matches a category, so
"asyncio event loop" is what the loop does itself, not what it runs.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

RATE_HZ = 200

# Checked innermost frame first; within a frame, in this order.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("payload codec (AES-GCM, infra/codec.py)", ("infra/codec.py",)),
    ("our code: deliver_webhook and helpers", ("activities/", "services/", "infra/", "domain/")),
    ("our code: workflows", ("workflows/",)),
    ("httpx / httpcore / h11 (the POST)", ("httpx/", "httpcore/", "h11/")),
    ("SDK: pydantic conversion", ("pydantic",)),
    ("SDK: serialization context (sandbox exec per payload)", ("get_serialization_context",)),
    ("SDK: payload visitor", ("_visitor",)),
    ("SDK: sandbox instance creation", ("create_instance",)),
    ("SDK: sandbox activation", ("InSandbox.activate", "_run_code")),
    ("SDK: bridge to core (Rust)", ("bridge/worker.py", "bridge/client.py")),
    ("SDK: activity worker", ("worker/_activity.py",)),
    ("SDK: workflow worker", ("worker/_workflow.py", "_workflow_instance.py")),
    ("asyncio event loop", ("asyncio/",)),
]


def category(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, markers in CATEGORIES:
            if any(marker in frame for marker in markers):
                return name
    return "other"


def summary(raw: str, units: float) -> list[str]:
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, samples = line.rpartition(" ")
        counts[category(stack.split(";"))] += int(samples)
    total = sum(counts.values())
    per_unit_ms = 1000 * total / RATE_HZ / units
    lines = [f"{total} samples holding the GIL, ~{per_unit_ms:.1f} ms per unit over {units:g} units"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in counts.most_common()]
    return lines


if __name__ == "__main__":
    print("\n".join(summary(Path(sys.argv[1]).read_text(), float(sys.argv[2]))))
