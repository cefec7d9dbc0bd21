"""Printing results: one rich table for people, JSON for machines.

Columns: the scenario; operations (successful ones - failures are counted
in the notes); ops/s over the wall time of the whole phase (from the common
start to the last reply, across all worker processes); client-side p50 and
p99 latency; the target from the issue; and the result - the measured
number the target is about, with ✓ (met), ✗ (missed), or ~ (not judged: a
--quick run at a size the target is not about).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._stats import Row


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "—"
    ms = seconds * 1000
    return f"{ms:,.2f} ms" if ms < 10 else f"{ms:,.1f} ms" if ms < 100 else f"{ms:,.0f} ms"


def _rate(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.0f}"


def _result(row: Row) -> Text:
    if row.target is None or math.isnan(row.measured):
        return Text("")
    unit = row.target.unit
    shown = f"{row.measured:,.0f} {unit}" if row.measured >= 100 else f"{row.measured:,.1f} {unit}"
    passed = row.passed
    if passed is None:
        return Text(f"~ {shown}", style="yellow")
    return Text(f"✓ {shown}", style="green") if passed else Text(f"✗ {shown}", style="bold red")


def table(rows: Sequence[Row], title: str, caption: str) -> Table:
    t = Table(title=title, caption=caption, box=box.SIMPLE_HEAVY, caption_justify="left")
    t.add_column("Scenario")
    t.add_column("Ops", justify="right")
    t.add_column("ops/s", justify="right")
    t.add_column("p50", justify="right")
    t.add_column("p99", justify="right")
    t.add_column("Target")
    t.add_column("Result")
    for row in rows:
        latency = row.latency
        rate = math.nan if row.latency is None else row.ops_per_second
        t.add_row(row.scenario, f"{row.operations:,}", _rate(rate),
                  _ms(latency.p50) if latency else "—", _ms(latency.p99) if latency else "—",
                  row.target.text if row.target else "—", _result(row))
    return t


def print_table(console: Console, rows: Sequence[Row], title: str, caption: str) -> None:
    console.print(table(rows, title, caption))
    notes = [(row.scenario, row.note) for row in rows if row.note]
    for scenario, note in notes:
        console.print(f"  [dim]{scenario}:[/dim] {note}")


def as_json(rows: Sequence[Row], environment: dict[str, Any]) -> str:
    return json.dumps({"environment": environment, "results": [r.to_json() for r in rows]}, indent=2,
                      ensure_ascii=False)
