"""`python -m bench.controllers`: how fast the workload controllers move a
thousand pods, and what the controller-manager costs doing it.

Starts its own etcd, apiserver and controller-manager (replicaset and
deployment controllers, no leader election) in a temporary directory,
registers 100 Node objects and plays scheduler and kubelets for them
(bench/_ctrl_pods.py: binds pods, makes them Running and Ready, removes
deleted ones), then:

1. scale up: a Deployment is scaled from 0 to 1,000 replicas - time until
   all 1,000 pods exist, and until the Deployment reports them available;
2. rolling update: the template's image changes (25% surge, 25%
   unavailable) - time until the Deployment reports the rollout complete
   and no old pod is left;
3. scale down: to 0 - time until every pod is gone from the store.

For each phase: wall time, pods per second, CPU seconds used by the
controller-manager, the apiserver, etcd and this process (the pod driver),
read from /proc/<pid>/stat; at the end the controller-manager's resident
memory (VmRSS now, VmHWM peak). Everything started is stopped however the
run ends (Ctrl-C and SIGTERM included).

    python -m bench.controllers            # 1,000 replicas on 100 nodes
    python -m bench.controllers --quick    # 100 replicas on 10 nodes: a smoke run
    python -m bench.controllers --json     # results as JSON on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from api import MERGE_PATCH, from_dict
from client import ClientConfig, Clientset
from deploy.local import ComponentProcess
from proto import apps_pb2, core_pb2

from ._cluster import Cluster, CpuMeter, memory_of
from ._ctrl_pods import PodDriver
from ._stats import load_average

NAMESPACE = "bench-controllers"
NAME = "web"


@dataclass
class Phase:
    name: str
    pods: int
    marks: dict[str, float]  # what -> seconds since the phase started
    cpu: dict[str, float]  # process group -> CPU seconds during the phase

    @property
    def wall(self) -> float:
        return max(self.marks.values())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.controllers", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100 replicas on 10 nodes, for a smoke run")
    p.add_argument("--replicas", type=int, default=0, help="replicas (default 1,000; 100 with --quick)")
    p.add_argument("--nodes", type=int, default=0, help="Node objects (default 100; 10 with --quick)")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    p.add_argument("--timeout", type=float, default=600.0, help="give up on a phase after this many seconds")
    return p


def _deployment(replicas: int) -> apps_pb2.Deployment:
    return from_dict(apps_pb2.Deployment, {
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": NAME}},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": {"metadata": {"labels": {"app": NAME}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}})


def _complete(d: apps_pb2.Deployment | None, replicas: int, generation: int = 0) -> bool:
    """The controller has seen `generation` (or the object's own) and
    reports every replica updated and available."""
    if d is None or d.status.observedGeneration < max(d.metadata.generation, generation):
        return False
    s = d.status
    return s.replicas == s.updatedReplicas == s.availableReplicas == replicas


async def scenario(target: str, pids: dict[str, list[int]], replicas: int, nodes: int, timeout: float,
                   progress: Console) -> list[Phase]:
    cs = Clientset.connect(ClientConfig(server=target))
    driver: PodDriver | None = None
    try:
        await cs.resource(core_pb2.Namespace).create(core_pb2.Namespace(metadata={"name": NAMESPACE}))
        driver = await PodDriver(cs, NAMESPACE, [f"hollow-{i:03d}" for i in range(nodes)]).start()
        deployments = cs.resource(apps_pb2.Deployment, NAMESPACE)
        await deployments.create(_deployment(0))
        census = driver.census
        await driver.changed.until(lambda: _complete(driver.deployments.get(NAME), 0), timeout,  # type: ignore[union-attr]
                                   "the Deployment observed")
        phases = []
        generation = 0

        async def phase(name: str, patch: dict[str, Any], goals: dict[str, Any]) -> Phase:
            assert driver is not None
            progress.print(f"[dim]{name}...[/dim]")
            nonlocal generation
            with CpuMeter(pids) as meter:
                start = time.monotonic()
                generation = (await deployments.patch(NAME, patch, patch_type=MERGE_PATCH)).metadata.generation
                marks = {}
                for what, check in goals.items():
                    marks[what] = await driver.changed.until(check, timeout, f"{name}: {what}") - start
            result = Phase(name, replicas, marks, meter.seconds)
            progress.print(f"[dim]  {', '.join(f'{k} {v:.1f} s' for k, v in marks.items())}[/dim]")
            return result

        def deployment() -> apps_pb2.Deployment | None:
            assert driver is not None
            return driver.deployments.get(NAME)

        phases.append(await phase(f"scale 0 → {replicas:,}", {"spec": {"replicas": replicas}}, {
            "all pods exist": lambda: census.live >= replicas,
            "available": lambda: _complete(deployment(), replicas, generation) and census.ready >= replicas,
        }))
        phases.append(await phase(f"rolling update of {replicas:,}", {"spec": {"template": {"spec": {
            "containers": [{"name": "web", "image": "nginx:1.26"}]}}}}, {
            "rolled out": lambda: _complete(deployment(), replicas, generation) and census.stored == replicas
            and census.ready == replicas,
        }))
        phases.append(await phase(f"scale {replicas:,} → 0", {"spec": {"replicas": 0}}, {
            "all pods gone": lambda: census.stored == 0 and _complete(deployment(), 0, generation),
        }))
        if driver.errors:
            progress.print(f"[yellow]the pod driver saw {driver.errors} unexpected errors[/yellow]")
        return phases
    finally:
        if driver is not None:
            await driver.stop()
        await cs.close()


def _table(phases: list[Phase], memory: dict[str, float], caption: str) -> Table:
    t = Table(title="kubelab controller benchmark", caption=caption, box=box.SIMPLE_HEAVY,
              caption_justify="left")
    for column in ("Phase", "Milestone", "Seconds", "Pods/s", "CM CPU s", "CM cores", "apiserver CPU s",
                   "etcd CPU s", "driver CPU s"):
        t.add_column(column, justify="left" if column in ("Phase", "Milestone") else "right")
    for p in phases:
        for i, (what, seconds) in enumerate(p.marks.items()):
            last = i == len(p.marks) - 1
            cpu = p.cpu if last else {}
            t.add_row(p.name if i == 0 else "", what, f"{seconds:.1f}", f"{p.pods / seconds:,.0f}" if seconds else "—",
                      f"{cpu['controller-manager']:.1f}" if cpu else "",
                      f"{cpu['controller-manager'] / p.wall:.2f}" if cpu else "",
                      f"{cpu['apiserver']:.1f}" if cpu else "", f"{cpu['etcd']:.1f}" if cpu else "",
                      f"{cpu['driver']:.1f}" if cpu else "")
    t.add_row("controller-manager RSS", "now / peak", f"{memory.get('VmRSS', 0):.0f} / {memory.get('VmHWM', 0):.0f} MB",
              "", "", "", "", "", "")
    return t


def run(args: argparse.Namespace) -> int:
    replicas = args.replicas or (100 if args.quick else 1000)
    nodes = args.nodes or (10 if args.quick else 100)
    progress = Console(stderr=True)
    out = Console(width=None if sys.stdout.isatty() else 150)
    load_before = load_average()
    started = time.monotonic()
    with Cluster(keep=args.keep) as cluster, contextlib.ExitStack() as stack:
        assert cluster.apiserver is not None and cluster.etcd is not None
        manager = ComponentProcess("controller_manager", cluster.target, log=cluster.workdir / "controller-manager.log",
                                   extra=["--leader-elect", "false", "--controllers", "replicaset,deployment"])
        stack.callback(manager.stop)
        manager.wait_ready()
        progress.print(f"[dim]etcd {cluster.etcd_url}, apiserver {cluster.target}, controller-manager pid "
                       f"{manager.pid}; {replicas:,} replicas on {nodes} nodes; data in {cluster.workdir}[/dim]")
        pids = {"controller-manager": [manager.pid], "apiserver": [cluster.apiserver.pid],
                "etcd": [cluster.etcd.pid], "driver": [os.getpid()]}
        phases = asyncio.run(scenario(cluster.target, pids, replicas, nodes, args.timeout, progress))
        memory = memory_of(manager.pid)
        if args.keep:
            progress.print(f"[dim]kept {cluster.workdir}[/dim]")
    load_after = load_average()
    seconds = time.monotonic() - started
    if args.json:
        print(json.dumps({
            "environment": {"cpus": os.cpu_count(), "python": platform.python_version(), "replicas": replicas,
                            "nodes": nodes, "load_average_before": load_before, "load_average_after": load_after,
                            "seconds": round(seconds, 1)},
            "phases": [asdict(p) for p in phases], "controller_manager_memory_mb": memory}, indent=2))
    else:
        caption = (f"{os.cpu_count()} CPUs · load average before {load_before[0]:.2f} / after {load_after[0]:.2f} · "
                   f"Python {platform.python_version()} · {replicas:,} replicas, {nodes} nodes · {seconds:.0f} s"
                   f"{' · --quick' if args.quick else ''}\nCPU columns: seconds used during the whole phase; "
                   "cores = controller-manager CPU seconds / phase wall time.")
        out.print(_table(phases, memory, caption))
    return 0


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("bench.controllers: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
