"""`python -m bench`: how fast the apiserver is, and how much memory it holds.

Starts its own etcd and apiserver in a temporary directory, drives them
from a few worker processes, prints one table and stops everything it
started, whatever happens (Ctrl-C and SIGTERM included).

    python -m bench                 # every scenario, at the issue's sizes
    python -m bench --quick         # smaller counts: a smoke run in well under a minute
    python -m bench --only crud,watch
    python -m bench --json          # machine-readable results on stdout
    python -m bench --keep          # leave the data dir and logs for inspection
    python -m bench etcd-clients    # etcd3aio vs etcd-sdk-python (see etcd_clients.py)

Scenarios and what each row means: bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from ._cluster import Cluster, etcd_version
from ._profile import Profiler, print_summary
from ._report import as_json, print_table
from ._scenarios import FULL, QUICK, SCENARIOS, Bench, prepare
from ._stats import Row, load_average
from ._workers import WorkerPool


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0],
                                epilog="`python -m bench etcd-clients --help` compares the etcd clients.")
    p.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    p.add_argument("--only", default="", metavar="SCENARIO[,SCENARIO]",
                   help=f"run only these scenarios: {', '.join(SCENARIOS)}")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    p.add_argument("--workers", type=int, default=4, help="load-generating processes (default %(default)s)")
    p.add_argument("--apiserver-flag", action="append", default=[], metavar="FLAG",
                   help="extra apiserver flag, e.g. --apiserver-flag=--max-mutating-requests-inflight=400")
    p.add_argument("--profile", default="", metavar="FILE",
                   help="sample the apiserver with py-spy during the 32-client creates and write "
                        "collapsed stacks to FILE (needs py-spy on PATH or in the virtualenv)")
    p.add_argument("--profile-native", action="store_true",
                   help="with --profile: include native frames (gRPC core, upb); slows the apiserver")
    return p


def _selected(only: str) -> list[str]:
    if not only:
        return list(SCENARIOS)
    wanted = [s.strip() for s in only.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        raise SystemExit(f"bench: unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    return [s for s in SCENARIOS if s in wanted]


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    names = _selected(args.only)
    sizes = QUICK if args.quick else FULL
    progress = Console(stderr=True)
    out = Console(width=None if sys.stdout.isatty() else 150)  # a table, not a wrapped paragraph
    load_before = load_average()
    rows: list[Row] = []
    environment: dict[str, Any] = {
        "cpus": os.cpu_count(), "python": platform.python_version(), "etcd": etcd_version(),
        "quick": args.quick, "workers": args.workers, "scenarios": names,
        "load_average_before": load_before,
    }
    started = time.monotonic()
    with Cluster(keep=args.keep, apiserver_flags=args.apiserver_flag) as cluster:
        assert cluster.apiserver is not None
        progress.print(f"[dim]etcd {cluster.etcd_url}, apiserver {cluster.target} (pid {cluster.apiserver.pid}), "
                       f"data in {cluster.workdir}[/dim]")
        with WorkerPool(args.workers, cluster.target, cluster.etcd_url).start() as pool:
            bench = Bench(cluster, pool, sizes, progress)
            bench.profiler = (Profiler(args.profile, cluster.apiserver.pid, native=args.profile_native)
                              if args.profile else None)
            prepare(bench)
            for name in names:
                rows += SCENARIOS[name](bench)
        if args.keep:
            progress.print(f"[dim]kept {cluster.workdir} (etcd-data/, etcd.log, apiserver.log)[/dim]")
    environment["load_average_after"] = load_average()
    environment["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(as_json(rows, environment))
    else:
        caption = (f"{os.cpu_count()} CPUs · load average before {load_before[0]:.2f} / after "
                   f"{environment['load_average_after'][0]:.2f} · etcd {environment['etcd']} · "
                   f"Python {environment['python']} · {args.workers} load processes · "
                   f"{environment['seconds']:.0f} s{' · --quick' if args.quick else ''}")
        print_table(out, rows, "kubelab apiserver benchmark", caption)
    if args.profile and bench.profiler is not None and bench.profiler.output.exists():
        print_summary(progress, bench.profiler.output)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "etcd-clients":
        from .etcd_clients import main as etcd_clients_main
        return etcd_clients_main(argv[1:])
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    try:
        return run(args)
    except KeyboardInterrupt:
        print("bench: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
