"""Latency summaries and the result rows every scenario produces.

A scenario measures client-side latencies (seconds, as floats) and counts
operations; this module turns them into the numbers the table and the JSON
show. Percentiles use the nearest-rank method on the sorted sample, so a p99
of 200 samples is the 198th smallest - no interpolation that would invent a
latency nobody saw.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank `p`th percentile (0 < p <= 100) of sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class Summary:
    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, latencies: Sequence[float]) -> Summary:
        ordered = sorted(latencies)
        return cls(len(ordered), percentile(ordered, 50), percentile(ordered, 99),
                   ordered[-1] if ordered else math.nan)


@dataclass(frozen=True)
class Target:
    """What the issue asks for: `value` in `unit`, which `measured` must reach
    (`at_least`) or stay under. `judged=False` when the run was too small
    to say (e.g. --quick lists 1,000 pods, not 10,000)."""

    text: str
    check: Callable[[float], bool] = field(compare=False)
    unit: str = ""
    judged: bool = True

    @staticmethod
    def at_least(value: float, unit: str, *, judged: bool = True) -> Target:
        return Target(f"≥ {value:,.0f} {unit}", lambda m: m >= value, unit, judged)

    @staticmethod
    def at_most(value: float, unit: str, *, judged: bool = True) -> Target:
        return Target(f"≤ {value:,.0f} {unit}", lambda m: m <= value, unit, judged)


@dataclass
class Row:
    """One line of the table. Latencies are in seconds; `measured` is the
    number compared with the target, in the target's unit."""

    scenario: str
    operations: int
    seconds: float = math.nan
    latency: Summary | None = None
    errors: int = 0
    target: Target | None = None
    measured: float = math.nan
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ops_per_second(self) -> float:
        return self.operations / self.seconds if self.seconds and self.seconds > 0 else math.nan

    @property
    def passed(self) -> bool | None:
        if self.target is None or not self.target.judged or math.isnan(self.measured):
            return None
        return bool(self.target.check(self.measured))

    def to_json(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if x is None or math.isnan(x) else round(x, 6)
        latency = asdict(self.latency) if self.latency else None
        return {
            "scenario": self.scenario, "operations": self.operations, "errors": self.errors,
            "seconds": num(self.seconds), "ops_per_second": num(self.ops_per_second),
            "p50_ms": num(self.latency.p50 * 1000) if self.latency else None,
            "p99_ms": num(self.latency.p99 * 1000) if self.latency else None,
            "max_ms": num(self.latency.max * 1000) if self.latency else None,
            "target": self.target.text if self.target else None,
            "measured": num(self.measured), "unit": self.target.unit if self.target else None,
            "passed": self.passed, "note": self.note, **({"latency_samples": latency["count"]} if latency else {}),
            **self.extra,
        }


def load_average() -> tuple[float, float, float]:
    try:
        with open("/proc/loadavg") as f:
            one, five, fifteen = f.read().split()[:3]
        return float(one), float(five), float(fifteen)
    except OSError:
        return (math.nan, math.nan, math.nan)


class Stopwatch:
    """Wall time of a block, by time.monotonic (the same clock in every
    process on Linux, so workers' stamps can be compared)."""

    def __enter__(self) -> Stopwatch:
        self.start = time.monotonic()
        self.seconds = math.nan
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.start
