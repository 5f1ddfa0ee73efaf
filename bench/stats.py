"""Pure helpers: percentiles, the exactly-once check, the printed table."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.ids import first_connection_id

FIRST_CONNECTION_PREFIX = first_connection_id("")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max of durations given in seconds, in milliseconds."""
    out: dict[str, float | None] = {}
    for name, q in (("p50", 50.0), ("p95", 95.0), ("p99", 99.0), ("max", 100.0)):
        value = percentile(seconds, q)
        out[name] = None if value is None else round(value * 1000, 1)
    return out


@dataclass
class ExactlyOnce:
    """How the POSTs the receiver got compare with the deliveries that were accepted."""

    expected: int
    received: int
    missing: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.received == self.expected and not (self.missing or self.duplicated or self.unexpected)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "expected": self.expected,
            "received": self.received,
            "missing": self.missing[:20],
            "missing_count": len(self.missing),
            "duplicated": dict(list(self.duplicated.items())[:20]),
            "duplicated_count": len(self.duplicated),
            "unexpected": self.unexpected[:20],
            "unexpected_count": len(self.unexpected),
        }


def exactly_once(expected: Iterable[str], received: Iterable[str]) -> ExactlyOnce:
    """One POST per expected id, matched by webhook-id; first-connection deliveries are not counted."""
    wanted = set(expected)
    counts = Counter(r for r in received if not r.startswith(FIRST_CONNECTION_PREFIX))
    return ExactlyOnce(
        expected=len(wanted),
        received=sum(counts.values()),
        missing=sorted(wanted - counts.keys()),
        duplicated={k: n for k, n in counts.items() if n > 1},
        unexpected=sorted(counts.keys() - wanted),
    )


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{2 if abs(value) < 10 else 1}f}"
    return str(value)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells
    ]
    return "\n".join(out)
