"""`python -m bench.scheduler`: how fast the scheduler places pods, end to
end, like Kubernetes' scheduler_perf SchedulingBasic.

For each size it starts a fresh etcd, apiserver and scheduler in a
temporary directory, registers N nodes as objects (no kubelets: 4 cpu,
32Gi, 110 pods each, spread over 3 zones), waits until the scheduler's
cache holds them all, then creates M pods (M = 2 x N, at least 1,000;
one pause container requesting 100m cpu and 500Mi, as scheduler_perf's
pod-default.yaml) as fast as 32 concurrent clients can, and watches them
through the apiserver until every one is bound. Everything goes through
the real apiserver and etcd; a binding counts when its watch event
arrives, i.e. once it is persisted.

    python -m bench.scheduler                      # 500, 1,000 and 5,000 nodes
    python -m bench.scheduler --quick              # 100 nodes, 1,000 pods: a smoke run
    python -m bench.scheduler --nodes 1000 --profile stacks.txt   # py-spy the scheduler

Printed per size: pods/s from the first create to the last binding;
p50/p99 of each pod's latency from its create call to its binding's watch
event (this includes the time the pod waited in the queue behind the
others: pods arrive faster than they are scheduled); the scheduler's own
attempt latency (p50/p99 from its histogram); the scheduler's peak RSS;
and how many cores the scheduler, apiserver and etcd kept busy. Every
process started is stopped at the end, however the run ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from api import StatusError, from_dict
from client import ClientConfig, Clientset
from deploy.local import ComponentProcess, wait_until
from proto import core_pb2

from ._cluster import Cluster, CpuMeter, memory_of
from ._profile import Profiler, print_summary
from ._stats import load_average, percentile

NAMESPACE = "bench-sched"
CLIENTS = 32
ZONES = ("zone-a", "zone-b", "zone-c")
TARGETS = {1000: ("pods/s", 300.0), 5000: ("pods/s", 150.0)}
RSS_TARGET_MB = 300.0
STALL_SECONDS = 30.0


@dataclass
class Result:
    nodes: int
    pods: int
    seconds: float
    pods_per_second: float
    latency_p50: float
    latency_p99: float
    attempt_p50: float
    attempt_p99: float
    rss_mb: float
    peak_rss_mb: float
    cores: dict[str, float] = field(default_factory=dict)
    unbound: int = 0
    load: tuple[float, float, float] = (math.nan, math.nan, math.nan)


def node_manifest(i: int) -> core_pb2.Node:
    name = f"node-{i:05d}"
    return from_dict(core_pb2.Node, {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                              "topology.kubernetes.io/zone": ZONES[i % len(ZONES)]}},
        "status": {"capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
                   "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True"}]},
    })


def pod_manifest(i: int, template: core_pb2.Pod | None = None) -> core_pb2.Pod:
    if template is not None:
        pod = core_pb2.Pod()
        pod.CopyFrom(template)
        pod.metadata.name = f"pod-{i:06d}"
        return pod
    return from_dict(core_pb2.Pod, {
        "metadata": {"name": f"pod-{i:06d}", "namespace": NAMESPACE},
        "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                 "ports": [{"containerPort": 80}],
                                 "resources": {"requests": {"cpu": "100m", "memory": "500Mi"},
                                               "limits": {"cpu": "100m", "memory": "500Mi"}}}]},
    })


async def _bounded(count: int, make: Any, clients: int = CLIENTS) -> list[float]:
    """Run `make(i)` for i in range(count), `clients` at a time; returns the
    monotonic time each call was sent."""
    sent = [0.0] * count
    counter = iter(range(count))

    async def worker() -> None:
        for i in counter:
            sent[i] = time.monotonic()
            await make(i)

    await asyncio.gather(*(worker() for _ in range(clients)))
    return sent


def scrape(port: int) -> dict[str, float]:
    """The scheduler's /metrics as {series: value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


def histogram_quantile(metrics: dict[str, float], name: str, labels: str, q: float) -> float:
    """Prometheus-style quantile from cumulative buckets (linear within a bucket)."""
    buckets: list[tuple[float, float]] = []
    for series, value in metrics.items():
        if series.startswith(f"{name}_bucket{{") and labels in series:
            bound = series.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((math.inf if bound == "+Inf" else float(bound), value))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return math.nan
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-9)
        prev_le, prev_count = le, count
    return prev_le


async def _run_size(cluster: Cluster, scheduler: ComponentProcess, nodes: int, pods: int,
                    progress: Console) -> tuple[float, list[float], int]:
    cs = Clientset.connect(ClientConfig(server=cluster.target))
    try:
        node_client = cs.resource(core_pb2.Node)
        started = time.monotonic()
        await _bounded(nodes, lambda i: node_client.create(node_manifest(i)))
        progress.log(f"{nodes} nodes registered in {time.monotonic() - started:.1f}s")
        wait_until(lambda: scrape(scheduler.metrics_port).get('scheduler_cache_size{type="nodes"}', 0) >= nodes,
                   120, "the scheduler's node cache", scheduler.proc, scheduler.log)
        await cs.resource(core_pb2.Namespace).create(core_pb2.Namespace(metadata={"name": NAMESPACE}))
        pod_client = cs.resource(core_pb2.Pod, NAMESPACE)
        rv = (await pod_client.list(limit=1)).resource_version
        bound_at: dict[str, float] = {}
        all_bound = asyncio.Event()

        async def watch() -> None:
            last = rv
            while True:
                try:
                    async for event in pod_client.watch(resource_version=last):
                        pod = event.object
                        last = pod.metadata.resourceVersion or last
                        if pod.spec.nodeName and pod.metadata.name not in bound_at:
                            bound_at[pod.metadata.name] = time.monotonic()
                            if len(bound_at) >= pods:
                                all_bound.set()
                                return
                except StatusError as err:
                    progress.log(f"watch ended ({err.reason}); resuming from {last}")

        watcher = asyncio.create_task(watch())
        progress.log(f"creating {pods} pods with {CLIENTS} clients")
        first = time.monotonic()
        template = pod_manifest(0)
        sent = await _bounded(pods, lambda i: pod_client.create(pod_manifest(i, template)))
        progress.log(f"{pods} pods created in {time.monotonic() - first:.1f}s; waiting for the bindings")
        # give up once bindings stop coming for a while (a pod the scheduler
        # never saw stays Pending; it is reported as unbound)
        seen, last_progress = -1, time.monotonic()
        while not all_bound.is_set() and time.monotonic() - last_progress < STALL_SECONDS:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_bound.wait(), 1.0)
            if len(bound_at) != seen:
                seen, last_progress = len(bound_at), time.monotonic()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        last = max(bound_at.values(), default=time.monotonic())
        latencies = [bound_at[f"pod-{i:06d}"] - sent[i] for i in range(pods) if f"pod-{i:06d}" in bound_at]
        return last - min(sent), latencies, pods - len(bound_at)
    finally:
        await cs.close()


def run_size(nodes: int, pods: int, args: argparse.Namespace, progress: Console) -> Result:
    load = load_average()
    with Cluster(keep=args.keep, apiserver_flags=args.apiserver_flag) as cluster:
        assert cluster.etcd is not None and cluster.apiserver is not None
        scheduler = ComponentProcess("scheduler", cluster.target, log=cluster.workdir / "scheduler.log",
                                     extra=["--leader-elect", "false", *args.scheduler_flag])
        try:
            scheduler.wait_ready()
            meter = CpuMeter({"scheduler": [scheduler.pid], "apiserver": [cluster.apiserver.pid],
                              "etcd": [cluster.etcd.pid], "bench": [os.getpid()]})
            profiler = Profiler(args.profile, scheduler.pid) if args.profile else contextlib.nullcontext()
            with profiler, meter:
                seconds, latencies, unbound = asyncio.run(_run_size(cluster, scheduler, nodes, pods, progress))
            metrics = scrape(scheduler.metrics_port)
            memory = memory_of(scheduler.pid)
        finally:
            scheduler.stop()
        if args.keep:
            progress.log(f"logs kept in {cluster.workdir}")
    latencies.sort()
    labels = 'result="scheduled"'
    name = "scheduler_scheduling_attempt_duration_seconds"
    return Result(nodes, pods, seconds, (pods - unbound) / seconds if seconds > 0 else math.nan,
                  percentile(latencies, 50), percentile(latencies, 99),
                  histogram_quantile(metrics, name, labels, 0.5), histogram_quantile(metrics, name, labels, 0.99),
                  memory.get("VmRSS", math.nan), memory.get("VmHWM", math.nan), meter.cores(seconds), unbound, load)


def print_results(console: Console, results: Sequence[Result], quick: bool) -> None:
    table = Table(title="kubelab scheduler, SchedulingBasic (end to end through apiserver + etcd)")
    for col in ("nodes", "pods", "seconds", "pods/s", "target", "latency p50", "latency p99",
                "attempt p50", "attempt p99", "peak RSS", "cores sched/api/etcd/bench", "load avg"):
        table.add_column(col, justify="right")
    for r in results:
        unit_target = TARGETS.get(r.nodes)
        verdict = "~"
        if unit_target and not quick:
            verdict = f"≥ {unit_target[1]:.0f} {'✓' if r.pods_per_second >= unit_target[1] else '✗'}"
        rss = f"{r.peak_rss_mb:.0f} MB"
        if r.nodes == 5000 and not quick:
            rss += " ✓" if r.peak_rss_mb <= RSS_TARGET_MB else " ✗"
        cores = "/".join(f"{r.cores.get(k, math.nan):.2f}" for k in ("scheduler", "apiserver", "etcd", "bench"))
        table.add_row(f"{r.nodes:,}", f"{r.pods:,}" + (f" ({r.unbound} unbound)" if r.unbound else ""),
                      f"{r.seconds:.1f}", f"{r.pods_per_second:,.0f}", verdict,
                      f"{r.latency_p50 * 1000:,.0f} ms", f"{r.latency_p99 * 1000:,.0f} ms",
                      f"{r.attempt_p50 * 1000:.1f} ms", f"{r.attempt_p99 * 1000:.1f} ms", rss, cores,
                      "{:.2f} {:.2f} {:.2f}".format(*r.load))
    console.print(table)
    console.print("latency: from a pod's create call to its binding's watch event, queueing behind the other "
                  "pods included; attempt: the scheduler's own scheduling_attempt_duration_seconds (cycle + "
                  "bind). Targets (2 cores, end to end): ≥ 300 pods/s at 1,000 nodes, ≥ 150 pods/s and "
                  "RSS ≤ 300 MB at 5,000. kube-scheduler's CI threshold at 5,000 nodes: 680 pods/s "
                  "(Go, in-process). Load average: before the size started.")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.scheduler", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100 nodes and 1,000 pods: a smoke run")
    p.add_argument("--nodes", default="500,1000,5000", metavar="N[,N]", help="node counts (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    p.add_argument("--profile", default="", metavar="FILE",
                   help="sample the scheduler with py-spy while pods are scheduled; collapsed stacks to FILE "
                        "(with several sizes, the last size's)")
    p.add_argument("--apiserver-flag", action="append", default=[], metavar="FLAG", help="extra apiserver flag")
    p.add_argument("--scheduler-flag", action="append", default=[], metavar="FLAG", help="extra scheduler flag")
    return p


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        sizes = [100] if args.quick else [int(n) for n in args.nodes.split(",") if n.strip()]
    except ValueError:
        raise SystemExit(f"bench.scheduler: --nodes wants numbers, not {args.nodes!r}") from None
    if not sizes or any(n < 1 for n in sizes):
        raise SystemExit("bench.scheduler: --nodes needs at least one positive count")
    signal.signal(signal.SIGTERM, _on_sigterm)
    progress = Console(stderr=True)
    out = Console(width=None if sys.stdout.isatty() else 170)
    results = []
    try:
        for nodes in sizes:
            pods = max(2 * nodes, 1000)
            progress.rule(f"{nodes} nodes, {pods} pods")
            results.append(run_size(nodes, pods, args, progress))
    except KeyboardInterrupt:
        progress.log("interrupted; everything started has been stopped")
        return 130
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "results": [asdict(r) for r in results]}, indent=2))
    else:
        print_results(out, results, args.quick)
    if args.profile:
        print_summary(out, Path(args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
