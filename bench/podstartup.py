"""`python -m bench.podstartup`: pod startup latency on real nodes, like
Kubernetes' pod startup SLI, and what a kubelet costs with 30 pods.

Brings up a lab (deploy/lab.py: control plane and 3 node namespaces, each
node a real CRI shim on runc, kubelet, proxy and pod network) in a
temporary state directory with a prefix of its own, makes sure the pause
image is on every node (the SLI excludes image pulls), then creates 100
pods (one pause container each) 10 at a time and measures, per pod, from
its create call to the watch event that shows it Running and Ready. It
reports p50/p90/p99 against the targets (p50 <= 1 s, p99 <= 2.5 s;
Kubernetes' SLO is p99 <= 5 s), the RSS of each node's kubelet and shim
once they run ~33 pods each, and where the CPU went meanwhile (by
component, with the runc and CNI runs each process started), and tears
the lab down.

    python -m bench.podstartup               # 100 pods on 3 nodes
    python -m bench.podstartup --pods 30     # a smaller run
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from api import StatusError, from_dict
from client import ClientConfig, Clientset, ResourceClient
from deploy.lab import down, up
from proto import core_pb2

from ._stats import load_average, percentile

PAUSE = "registry.k8s.io/pause:3.10"
NAMESPACE = "bench-startup"
TARGETS = {50: 1.0, 99: 2.5}
KUBELET_RSS_TARGET_MB = 100.0


def pod(name: str, node: str = "") -> core_pb2.Pod:
    spec: dict[str, object] = {"containers": [{"name": "pause", "image": PAUSE, "imagePullPolicy": "IfNotPresent",
                                               "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}],
                               "terminationGracePeriodSeconds": 0}
    if node:
        spec["nodeName"] = node
    return from_dict(core_pb2.Pod, {"metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec})


def ready(p: core_pb2.Pod) -> bool:
    return p.status.phase == "Running" and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)


async def wait_all(pods: ResourceClient[core_pb2.Pod], names: set[str], rv: str, seen: dict[str, float],
                   timeout: float) -> None:
    """Record when each named pod is first seen Running and Ready."""
    deadline = time.monotonic() + timeout
    while names - seen.keys() and time.monotonic() < deadline:
        try:
            async for event in pods.watch(resource_version=rv, timeout_seconds=int(timeout)):
                rv = event.object.metadata.resourceVersion or rv
                if event.object.metadata.name in names and event.object.metadata.name not in seen \
                        and ready(event.object):
                    seen[event.object.metadata.name] = time.monotonic()
                if not names - seen.keys() or time.monotonic() > deadline:
                    return
        except StatusError:  # a broken watch resumes from the last event
            await asyncio.sleep(0.2)


async def measure(server: str, nodes: list[str], count: int, qps: float, progress: Console,
                  mine: bytes) -> tuple[list[float], int, dict[str, float], float]:
    cs = Clientset.connect(ClientConfig(server=server))
    try:
        await cs.resource(core_pb2.Namespace).create(core_pb2.Namespace(metadata={"name": NAMESPACE}))
        pods = cs.resource(core_pb2.Pod, NAMESPACE)
        # Warm-up: one pod per node pulls the pause image there (not part of the SLI).
        warm = {f"warm-{i}" for i in range(len(nodes))}
        rv = (await pods.list(limit=1)).resource_version
        seen: dict[str, float] = {}
        watcher = asyncio.create_task(wait_all(pods, warm, rv, seen, 300))
        for i, node in enumerate(nodes):
            await pods.create(pod(f"warm-{i}", node))
        await watcher
        progress.log(f"images warm on {len(seen)}/{len(nodes)} nodes")
        names = {f"p-{i:04d}" for i in range(count)}
        rv = (await pods.list(limit=1)).resource_version
        seen = {}
        watcher = asyncio.create_task(wait_all(pods, names, rv, seen, 600))
        cpu_before, wall_before = cpu_seconds(mine), time.monotonic()
        sent: dict[str, float] = {}
        queue = iter(sorted(names))

        async def creator() -> None:
            for name in queue:
                sent[name] = time.monotonic()
                await pods.create(pod(name))

        if qps > 0:  # paced: one create every 1/qps seconds, as density tests do
            first = time.monotonic()
            for i, name in enumerate(sorted(names)):
                await asyncio.sleep(max(0.0, first + i / qps - time.monotonic()))
                sent[name] = time.monotonic()
                await pods.create(pod(name))
        else:  # a burst: 10 clients as fast as they can
            await asyncio.gather(*(creator() for _ in range(10)))
        progress.log(f"{count} pods created; waiting for Running and Ready")
        await watcher
        cpu = cpu_used(cpu_before, cpu_seconds(mine))
        latencies = sorted(seen[n] - sent[n] for n in seen)
        return latencies, count - len(seen), cpu, time.monotonic() - wall_before
    finally:
        await cs.close()


# Where the CPU goes: each lab process by its command line. A process's
# figure includes the children it reaped: the shim's runc, CNI plugin and
# skopeo runs, each monitor's `runc create`.
COMPONENTS = {
    "etcd": b"etcd\0",
    "apiserver": b"-m\0apiserver\0",
    "scheduler": b"-m\0scheduler\0",
    "controller-manager": b"-m\0controller_manager\0",
    "kubelets": b"-m\0kubelet\0",
    "shims (with runc and CNI runs)": b"-m\0crishim\0",
    "container monitors (with runc create)": b"crishim/_monitor.py",
    "proxies": b"-m\0proxy\0",
    "pod network agents": b"-m\0podnetwork\0",
}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(mine: bytes) -> dict[str, dict[int, float]]:
    """CPU seconds so far (user + system, own and reaped children's) of
    this lab's processes, by component, by pid."""
    out: dict[str, dict[int, float]] = {name: {} for name in COMPONENTS}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if mine not in cmdline:
                continue
            for name, pattern in COMPONENTS.items():
                if pattern in cmdline:
                    fields = (proc / "stat").read_text().rpartition(")")[2].split()
                    out[name][int(proc.name)] = sum(int(f) for f in fields[11:15]) / TICKS
                    break
        except OSError:
            continue
    return out


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds each component spent between two snapshots (a process
    that started in between counts whole)."""
    return {name: sum(t - before[name].get(pid, 0.0) for pid, t in after[name].items()) for name in after}


def rss_mb(pattern: bytes, also: bytes) -> list[float]:
    """VmRSS of the processes whose command line holds both byte strings."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if pattern in cmdline and also in cmdline:
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out.append(int(line.split()[1]) / 1000)
        except OSError:
            continue
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.podstartup", description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=100)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--qps", type=float, default=0.0,
                   help="create pods at this rate (pods/s) instead of all at once (default: all at once)")
    args = p.parse_args(argv)
    progress = Console(stderr=True)
    state = Path(tempfile.mkdtemp(prefix="kubelab-bench-lab-"))
    prefix = f"kl-b{uuid.uuid4().hex[:4]}"
    config = state / "config"
    load = load_average()
    started = time.monotonic()
    try:
        lab = up(state / "lab", nodes=args.nodes, prefix=prefix, config_path=config,
                 progress=lambda c, m: progress.log(f"{c:<18} {m}"))
        up_seconds = time.monotonic() - started
        nodes = [f"{prefix}-node-{i + 1}" for i in range(args.nodes)]
        mine = str(state).encode()  # this lab's processes name its state directory
        latencies, missing, cpu, wall = asyncio.run(measure(lab.server, nodes, args.pods, args.qps, progress, mine))
        kubelets = rss_mb(b"-m\0kubelet\0", mine) or [math.nan]
        shims = rss_mb(b"-m\0crishim\0", mine) or [math.nan]
        monitors = rss_mb(b"crishim/_monitor.py", mine) or [math.nan]
    finally:
        down(state / "lab", config_path=config)
    pace = f"at {args.qps:g} pods/s" if args.qps > 0 else "all at once"
    table = Table(title=f"kubelab pod startup: {args.pods} pods on {args.nodes} real nodes (runc), created {pace}")
    for col in ("measure", "value", "target"):
        table.add_column(col, justify="right")
    table.add_row("lab up (to all nodes Ready)", f"{up_seconds:.1f} s", "≤ 30 s " + ("✓" if up_seconds <= 30 else "✗"))
    for q in (50, 90, 99):
        value = percentile(latencies, q) if latencies else math.nan
        target = TARGETS.get(q)
        verdict = "" if target is None else f"≤ {target:g} s " + ("✓" if value <= target else "✗")
        table.add_row(f"startup p{q}", f"{value * 1000:,.0f} ms", verdict)
    table.add_row("pods not Running and Ready", str(missing), "0")
    per_node = args.pods / args.nodes
    kubelet = max(kubelets)
    table.add_row(f"kubelet RSS (max of {len(kubelets)}, ~{per_node:.0f} pods each)", f"{kubelet:.0f} MB",
                  f"≤ {KUBELET_RSS_TARGET_MB:.0f} MB " + ("✓" if kubelet <= KUBELET_RSS_TARGET_MB else "✗"))
    table.add_row("shim RSS (max)", f"{max(shims):.0f} MB", "")
    table.add_row(f"container monitors ({len(monitors)})", f"{sum(monitors):.0f} MB in all", "")
    out = Console(width=None if sys.stdout.isatty() else 140)
    out.print(table)
    spent = Table(title=f"where the CPU went: from the first create to the last pod Ready ({wall:.1f} s wall, "
                        f"{os.cpu_count()} cores)")
    for col in ("component", "CPU s", "share", "ms per pod"):
        spent.add_column(col, justify="right")
    total = sum(cpu.values()) or math.nan
    for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
        spent.add_row(name, f"{seconds:.1f}", f"{seconds / total:.0%}", f"{seconds * 1000 / args.pods:.0f}")
    spent.add_row("all", f"{total:.1f}", f"{total / (wall * (os.cpu_count() or 1)):.0%} of the machine",
                  f"{total * 1000 / args.pods:.0f}")
    out.print(spent)
    one, five, fifteen = load
    out.print("startup: from the create call to the watch event showing the pod Running and Ready; the pause image "
              f"was already on every node (the SLI excludes pulls). Load average before: {one:.2f} {five:.2f} "
              f"{fifteen:.2f}; {os.cpu_count()} cores.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
