"""`python -m bench.kubelet`: what a hollow node costs, and how fast pods
start on hollow nodes.

Node cost: for each size (100 and 1,000 nodes) a fresh etcd and apiserver
and one `python -m kubelet --hollow N` process; once every node is
registered and Ready, each runs 2 pods (`--pods-per-node`, bound by
spec.nodeName, with a readiness probe); once all are Running the
process's resident memory (RSS) is read, then
for one lease period (40 s) every node's Lease is watched: each node must
renew it (every 10 s) and every node stays Ready. Printed: RSS per node
(the whole process divided by N, so the interpreter and the shared
informers count against the nodes) and the marginal cost between the two
sizes, the share of nodes that renewed, and the cores the kubelet process
and the apiserver + etcd kept busy meanwhile. Target: <= 5 MB per node at
1,000 nodes.

Pod startup: 3 hollow nodes, then 100 pods created (10 clients at once),
each already bound by spec.nodeName (no scheduler: this measures the
kubelet), one pause container with a readiness probe. A pod's startup
latency is from its create call to the watch event that shows it Ready
(the pod startup SLI of Kubernetes' SLOs: p99 <= 5 s). Printed: p50 and
p99.

    python -m bench.kubelet            # 100 and 1,000 nodes, then pod startup
    python -m bench.kubelet --quick    # 100 nodes, then pod startup

Every process started is stopped at the end, however the run ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.table import Table

from api import from_dict
from client import ClientConfig, Clientset
from deploy.local import ComponentProcess
from proto import coordination_pb2, core_pb2

from ._cluster import Cluster, CpuMeter, memory_of
from ._stats import percentile

TARGET_MB_PER_NODE = 5.0
TARGET_STARTUP_P99 = 5.0


@dataclass
class NodeCost:
    nodes: int
    pods: int
    ready_seconds: float
    rss_mb: float
    rss_per_node_mb: float
    renewed: int
    ready_after: int
    kubelet_cores: float
    control_plane_cores: float


@dataclass
class Startup:
    pods: int
    p50: float
    p99: float
    wall: float


def start_hollow(cluster: Cluster, n: int, prefix: str) -> ComponentProcess:
    assert cluster.apiserver is not None
    return ComponentProcess("kubelet", cluster.target, log=cluster.workdir / f"kubelet-{n}.log",
                            extra=["--hollow", str(n), "--name-prefix", prefix]).wait_ready(timeout=900)


async def wait_ready(cs: Clientset, n: int, progress: Console) -> None:
    """Until n nodes are Ready and n node Leases exist."""
    while True:
        nodes = (await cs.resource(core_pb2.Node).list()).items
        ready = sum(1 for node in nodes if any(c.type == "Ready" and c.status == "True"
                                               for c in node.status.conditions))
        leases = len((await cs.resource(coordination_pb2.Lease, "kube-node-lease").list()).items)
        if ready >= n and leases >= n:
            return
        progress.print(f"  {ready}/{n} nodes Ready, {leases} leases", end="\r")
        await asyncio.sleep(0.5)


async def run_pods(cs: Clientset, count: int, nodes: list[str], progress: Console) -> None:
    """Create `count` pods bound round-robin to `nodes` and wait until all run."""
    pods = cs.resource(core_pb2.Pod, "default")
    queue = list(range(count))

    async def client() -> None:
        while queue:
            i = queue.pop()
            await pods.create(_pod(f"pod-{i}", nodes[i % len(nodes)]))

    await asyncio.gather(*(client() for _ in range(16)))
    while True:
        running = sum(1 for p in (await pods.list()).items if p.status.phase == "Running")
        if running >= count:
            return
        progress.print(f"  {running}/{count} pods Running", end="\r")
        await asyncio.sleep(1)


async def measure_nodes(n: int, pods_per_node: int, progress: Console) -> NodeCost:
    with Cluster() as cluster:
        cs = Clientset.connect(ClientConfig(server=cluster.target))
        try:
            started = time.monotonic()
            proc = start_hollow(cluster, n, "hollow-")
            try:
                await wait_ready(cs, n, progress)
                took = time.monotonic() - started
                progress.print(f"  {n} nodes Ready after {took:.0f}s; starting {n * pods_per_node} pods")
                await run_pods(cs, n * pods_per_node, [f"hollow-{i}" for i in range(n)], progress)
                progress.print(f"  {n * pods_per_node} pods Running; watching leases for 40s")
                leases = cs.resource(coordination_pb2.Lease, "kube-node-lease")
                before = {le.metadata.name: le.spec.renewTime for le in (await leases.list()).items}
                assert cluster.apiserver is not None and cluster.etcd is not None
                meter = CpuMeter({"kubelet": [proc.pid], "control plane": [cluster.apiserver.pid,
                                                                          cluster.etcd.pid]})
                with meter:
                    await asyncio.sleep(40)
                after = {le.metadata.name: le.spec.renewTime for le in (await leases.list()).items}
                renewed = sum(1 for name, t in after.items() if name in before and before[name] != t)
                nodes = (await cs.resource(core_pb2.Node).list()).items
                ready = sum(1 for node in nodes if any(c.type == "Ready" and c.status == "True"
                                                       for c in node.status.conditions))
                rss = memory_of(proc.pid)["VmRSS"]
                cores = meter.cores(40)
                return NodeCost(n, n * pods_per_node, round(took, 1), round(rss, 1), round(rss / n, 2), renewed, ready,
                                cores["kubelet"], cores["control plane"])
            finally:
                proc.stop()
        finally:
            await cs.close()


def _pod(name: str, node: str) -> core_pb2.Pod:
    return from_dict(core_pb2.Pod, {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": [{
            "name": "pause", "image": "registry.k8s.io/pause:3.9",
            "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1}}]}})


async def measure_startup(count: int, progress: Console) -> Startup:
    with Cluster() as cluster:
        cs = Clientset.connect(ClientConfig(server=cluster.target))
        try:
            proc = start_hollow(cluster, 3, "startup-")
            try:
                await wait_ready(cs, 3, progress)
                pods = cs.resource(core_pb2.Pod, "default")
                created: dict[str, float] = {}
                ready: dict[str, float] = {}
                done = asyncio.Event()
                rv = (await pods.list()).resource_version

                async def watch() -> None:
                    async for event in pods.watch(resource_version=rv):
                        p = event.object
                        name = p.metadata.name
                        if name in ready:
                            continue
                        if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions):
                            ready[name] = time.monotonic()
                            if len(ready) == count:
                                done.set()
                                return

                watcher = asyncio.create_task(watch())
                queue = [f"pod-{i}" for i in range(count)]
                start = time.monotonic()

                async def client() -> None:
                    while queue:
                        name = queue.pop()
                        created[name] = time.monotonic()
                        await pods.create(_pod(name, f"startup-{int(name.split('-')[1]) % 3}"))

                await asyncio.gather(*(client() for _ in range(10)))
                await asyncio.wait_for(done.wait(), 300)
                wall = time.monotonic() - start
                watcher.cancel()
                latencies = sorted(ready[n] - created[n] for n in created)
                return Startup(count, round(percentile(latencies, 50), 3), round(percentile(latencies, 99), 3),
                               round(wall, 2))
            finally:
                proc.stop()
        finally:
            await cs.close()


def print_results(console: Console, costs: Sequence[NodeCost], startup: Startup | None) -> None:
    t = Table(title="kubelet: hollow node cost", caption_justify="left",
              caption=f"RSS per node: the whole kubelet process / N; target <= {TARGET_MB_PER_NODE:g} MB per node "
                      "at 1,000 nodes. Renewed: nodes whose Lease changed during 40 s. Cores: CPU used over those "
                      f"40 s ({os.cpu_count()} cores on this machine).")
    for col in ("Nodes", "Pods", "Ready after", "RSS", "RSS / node", "Renewed", "Ready", "kubelet cores",
                "apiserver+etcd cores", "Result"):
        t.add_column(col, justify="right")
    for c in costs:
        ok = c.rss_per_node_mb <= TARGET_MB_PER_NODE and c.renewed == c.nodes and c.ready_after == c.nodes
        t.add_row(f"{c.nodes:,}", f"{c.pods:,}", f"{c.ready_seconds:.1f} s", f"{c.rss_mb:,.0f} MB",
                  f"{c.rss_per_node_mb:.2f} MB",
                  f"{c.renewed}/{c.nodes}", f"{c.ready_after}/{c.nodes}", f"{c.kubelet_cores:.2f}",
                  f"{c.control_plane_cores:.2f}", "[green]✓[/]" if ok else "[bold red]✗[/]")
    console.print(t)
    if len(costs) >= 2:
        a, b = costs[0], costs[-1]
        marginal = (b.rss_mb - a.rss_mb) / (b.nodes - a.nodes)
        console.print(f"marginal cost between {a.nodes:,} and {b.nodes:,} nodes: {marginal:.2f} MB per node")
    if startup is not None:
        s = Table(title="kubelet: pod startup on 3 hollow nodes", caption_justify="left",
                  caption="latency: from the pod's create call (already bound) to the watch event showing it Ready; "
                          f"target p99 <= {TARGET_STARTUP_P99:g} s (Kubernetes' pod startup SLO).")
        for col in ("Pods", "Wall", "p50", "p99", "Result"):
            s.add_column(col, justify="right")
        ok = startup.p99 <= TARGET_STARTUP_P99
        s.add_row(str(startup.pods), f"{startup.wall:.1f} s", f"{startup.p50 * 1000:,.0f} ms",
                  f"{startup.p99 * 1000:,.0f} ms", "[green]✓[/]" if ok else "[bold red]✗[/]")
        console.print(s)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.kubelet", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="100 nodes only")
    p.add_argument("--nodes", type=int, nargs="*", help="node counts (default 100 1000)")
    p.add_argument("--pods", type=int, default=100, help="pods for the startup latency (default %(default)s)")
    p.add_argument("--pods-per-node", type=int, default=2,
                   help="pods each hollow node runs while its cost is measured (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = p.parse_args(argv)
    sizes = args.nodes or ([100] if args.quick else [100, 1000])
    progress = Console(stderr=True)
    out = Console(width=None if sys.stdout.isatty() else 170)

    async def run() -> tuple[list[NodeCost], Startup | None]:
        costs = []
        for n in sizes:
            progress.print(f"[bold]{n} hollow nodes[/]")
            costs.append(await measure_nodes(n, args.pods_per_node, progress))
        progress.print(f"[bold]pod startup: {args.pods} pods on 3 hollow nodes[/]")
        startup = await measure_startup(args.pods, progress) if args.pods else None
        return costs, startup

    costs, startup = asyncio.run(run())
    if args.json:
        print(json.dumps({"nodes": [asdict(c) for c in costs], "startup": asdict(startup) if startup else None},
                         indent=2))
    else:
        print_results(out, costs, startup)


if __name__ == "__main__":
    main()
