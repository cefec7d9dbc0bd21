"""`python -m bench.etcd_clients` (or `python -m bench etcd-clients`):
etcd3aio against etcd-sdk-python under the apiserver's operations.

The issue asks to measure the two maintained clients of the python-etcd3
lineage and pick one: etcd3aio (asyncio, on grpc.aio) and etcd-sdk-python
(module pyetcd, blocking calls, threads). The two cannot live in one
process - both register etcd's proto files in protobuf's default pool
("duplicate symbol 'mvccpb.KeyValue'") - so each runs in a subprocess of
its own (bench/_probe.py, which says what it measures), against a fresh
etcd of its own so neither inherits the other's database. This module
starts etcd, runs the probes one after the other, and prints them side
by side. etcd-sdk-python runs twice: with plain threads (its natural
shape) and driven from asyncio through a thread pool (the shape it would
have inside the apiserver, whose server and handlers are asyncio).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from deploy.local import EtcdProcess

from ._probe import ADAPTERS
from ._stats import load_average

LABELS = {
    "create": "create-if-absent txn",
    "update": "compare-and-swap txn",
    "get": "get one key",
    "range": "range 10,000 keys",
    "watch": "watch delivery",
}


def probe(client: str, quick: bool, workdir: Path, progress: Console) -> dict[str, Any]:
    """Run one client's probe against a fresh etcd; its JSON answer."""
    data = workdir / client
    etcd = EtcdProcess(data / "etcd-data", log=data / "etcd.log")
    try:
        etcd.wait_ready()
        progress.print(f"[dim]{client}: probing etcd at {etcd.url}[/dim]")
        argv = [sys.executable, "-m", "bench._probe", "--client", client, "--etcd", etcd.url,
                *(["--quick"] if quick else [])]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"the {client} probe failed (exit {proc.returncode}):\n{err[-3000:]}")
        return dict(json.loads(out))
    finally:
        etcd.stop()


def _cell_ms(ms: float) -> str:
    return "—" if ms is None or math.isnan(ms) else f"{ms:,.2f}" if ms < 10 else f"{ms:,.1f}"


def table(answers: list[dict[str, Any]], caption: str) -> Table:
    t = Table(title="etcd clients under the apiserver's operations", caption=caption, caption_justify="left",
              box=box.SIMPLE_HEAVY)
    t.add_column("operation")
    t.add_column("conc.", justify="right")
    for a in answers:
        t.add_column(f"{a['client']} {a['version']}\nops/s", justify="right")
        t.add_column("\np50 ms", justify="right")
        t.add_column("\np99 ms", justify="right")
        t.add_column("CPU\nµs/op", justify="right")
    keyed = [{(r["op"], r["concurrency"]): r for r in a["results"]} for a in answers]
    for op, concurrency in keyed[0]:
        label = LABELS.get(op, op)
        if op == "watch":
            label += f" ({concurrency} watcher{'s' if concurrency > 1 else ''})"
        cells = [label, str(concurrency)]
        for results in keyed:
            r = results.get((op, concurrency))
            if r is None:
                cells += ["—"] * 4
                continue
            rate = r["ops"] / r["seconds"] if r["seconds"] else math.nan
            errors = f" ({r['errors']} err)" if r["errors"] else ""
            cells += [f"{rate:,.0f}{errors}", _cell_ms(r["p50_ms"]), _cell_ms(r["p99_ms"]),
                      f"{r['cpu_us_per_op']:,.0f}"]
        t.add_row(*cells)
    return t


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.etcd_clients", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON on stdout")
    p.add_argument("--keep", action="store_true", help="keep the etcd data directories and logs")
    p.add_argument("--client", action="append", choices=list(ADAPTERS), help="only this client (repeatable)")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    progress = Console(stderr=True)
    workdir = Path(tempfile.mkdtemp(prefix="kubelab-bench-etcd-clients-"))
    before = load_average()
    try:
        answers = [probe(client, args.quick, workdir, progress) for client in (args.client or list(ADAPTERS))]
    except KeyboardInterrupt:
        print("bench: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            progress.print(f"[dim]kept {workdir}[/dim]")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    after = load_average()
    if args.json:
        print(json.dumps({"load_average_before": before, "load_average_after": after, "clients": answers},
                         indent=2))
        return 0
    caption = (f"load average before {before[0]:.2f} / after {after[0]:.2f} · a fresh etcd per client · "
               f"values ~1 KiB · etcd3aio: coroutines on one channel · etcd-sdk-python: threads sharing one "
               f"client · +asyncio: coroutines calling it through 32 threads (run_in_executor)"
               f"{' · --quick' if args.quick else ''}")
    Console(width=None if sys.stdout.isatty() else 200).print(table(answers, caption))
    return 0


if __name__ == "__main__":
    sys.exit(main())
