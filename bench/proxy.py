"""`python -m bench.proxy`: how fast the proxy programs the kernel.

Sync time: in a scratch network namespace (`kl-b-...`), N Services x 5
ready endpoints are handed straight to a backend (no apiserver: this is
the proxier's own cost, rule generation plus iptables-restore / nft -f
into the real kernel), once as a full sync and then as partial syncs of a
one-endpoint change (an endpoint removed, then one added, on different
Services; p50/p99 over the repetitions), for iptables and nftables at
1,000 and 10,000 Services.

Network programming latency: a fresh etcd and apiserver, `python -m proxy`
inside a scratch namespace (through the apiserver's unix socket), S
Services with slices; then, one at a time, an EndpointSlice gains a ready
endpoint through the apiserver, and the clock stops when that endpoint's
DNAT rule is in the kernel (polled with iptables-save / nft list every
few milliseconds). This is the issue's "an endpoint becomes ready to its
rule being in the kernel", apiserver and watch included.

    python -m bench.proxy                 # everything (the 10,000-Service full syncs take minutes)
    python -m bench.proxy --quick         # 1,000 Services only, fewer repetitions
    python -m bench.proxy --sizes 1000 --modes nftables

Every namespace and process it starts is removed at the end, however the
run ends.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from api import from_dict
from client import ClientConfig, SyncClientset
from deploy.local import ManagedProcess
from proto import core_pb2, discovery_pb2
from proxy import (
    CommandRunner,
    Endpoint,
    IptablesProxier,
    NftablesProxier,
    Options,
    Proxier,
    ProxySnapshot,
    ServicePort,
    ServicePortName,
)

from ._cluster import Cluster
from ._stats import percentile

ENDPOINTS = 5
CLUSTER_CIDR = "10.64.0.0/10"
TARGETS = {("nftables", 10000): 0.1, ("iptables", 10000): 1.0}  # one-endpoint change, seconds
NPL_TARGET = 1.0


@contextlib.contextmanager
def scratch_namespace(kind: str) -> Iterator[str]:
    name = f"kl-b-{kind}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def endpoint_ip(k: int) -> str:
    return f"10.{64 + k // 65000}.{(k // 250) % 256}.{k % 250 + 1}"


def service_ip(i: int) -> str:
    return f"10.96.{i // 250}.{i % 250 + 1}"


def snapshot(n: int) -> ProxySnapshot:
    services, endpoints = {}, {}
    for i in range(n):
        name = ServicePortName("bench", f"svc-{i}", "http")
        services[name] = ServicePort(name, service_ip(i), 80)
        endpoints[name] = tuple(Endpoint(endpoint_ip(i * ENDPOINTS + j), 8080) for j in range(ENDPOINTS))
    return ProxySnapshot(services, endpoints)


@dataclass
class SyncRow:
    mode: str
    services: int
    full: float
    change_p50: float
    change_p99: float
    rules: str


def measure_sync(mode: str, n: int, repeats: int) -> SyncRow:
    with scratch_namespace("sync") as ns:
        runner = CommandRunner(ns)
        proxier: Proxier = (NftablesProxier if mode == "nftables" else IptablesProxier)(
            runner, Options(cluster_cidr=CLUSTER_CIDR))
        snap = snapshot(n)
        start = time.perf_counter()
        result = proxier.sync(snap, None)
        full = time.perf_counter() - start
        endpoints = dict(snap.endpoints)
        times = []
        for r in range(repeats):
            name = ServicePortName("bench", f"svc-{(r * 7919) % n}", "http")
            current = endpoints[name]
            # alternately drop an endpoint and add a new one
            added = Endpoint(endpoint_ip(n * ENDPOINTS + r), 8080)
            endpoints[name] = current[:-1] if r % 2 == 0 else (*current, added)
            start = time.perf_counter()
            proxier.sync(ProxySnapshot(snap.services, dict(endpoints)), {name})
            times.append(time.perf_counter() - start)
        times.sort()
        rules = ", ".join(f"{v:,} {k}" for k, v in result.rules.items())
        return SyncRow(mode, n, full, percentile(times, 50), percentile(times, 99), rules)


@dataclass
class LatencyRow:
    mode: str
    services: int
    samples: int
    p50: float
    p99: float


def make_service(i: int) -> core_pb2.Service:
    return from_dict(core_pb2.Service, {"metadata": {"name": f"svc-{i}", "namespace": "default"},
                                        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})


def make_slice(i: int, ips: Sequence[str], rv: str = "") -> discovery_pb2.EndpointSlice:
    return from_dict(discovery_pb2.EndpointSlice, {
        "metadata": {"name": f"svc-{i}-x", "namespace": "default", "resourceVersion": rv,
                     "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
        "addressType": "IPv4", "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})


def measure_latency(mode: str, services: int, samples: int) -> LatencyRow:
    with contextlib.ExitStack() as stack:
        cluster = Cluster()
        sock = cluster.workdir / "apiserver.sock"
        cluster.apiserver_flags = ["--unix-socket", str(sock)]
        stack.enter_context(cluster)
        ns = stack.enter_context(scratch_namespace("npl"))
        cs = SyncClientset(ClientConfig(server=cluster.target))
        stack.callback(cs.close)
        slices = cs.resource(discovery_pb2.EndpointSlice, "default")
        current: dict[int, discovery_pb2.EndpointSlice] = {}
        for i in range(services):
            cs.resource(core_pb2.Service, "default").create(make_service(i))
            current[i] = slices.create(make_slice(i, [endpoint_ip(i * ENDPOINTS + j) for j in range(ENDPOINTS)]))
        proxy = ManagedProcess(["ip", "netns", "exec", ns, sys.executable, "-m", "proxy", "--server", f"unix://{sock}",
                                "--proxy-mode", mode, "--cluster-cidr", CLUSTER_CIDR],
                               cluster.workdir / "proxy.log")
        stack.callback(proxy.stop)
        listing = ["nft", "list", "table", "ip", "kube-proxy"] if mode == "nftables" else ["iptables-save", "-t", "nat"]
        last = endpoint_ip((services - 1) * ENDPOINTS + ENDPOINTS - 1)
        wait_for(ns, listing, f"{last}:8080", proxy, 120)
        latencies = []
        for s in range(samples):
            i = (s * 37) % services
            new_ip = endpoint_ip(services * ENDPOINTS + s)
            ips = [a for e in current[i].endpoints for a in e.addresses] + [new_ip]
            time.sleep(1.2)  # let min-sync-period pass: each change is measured alone, not batched
            start = time.perf_counter()
            current[i] = slices.update(make_slice(i, ips, current[i].metadata.resourceVersion))
            wait_for(ns, listing, f"{new_ip}:8080", proxy, 30)
            latencies.append(time.perf_counter() - start)
        latencies.sort()
        return LatencyRow(mode, services, samples, percentile(latencies, 50), percentile(latencies, 99))


def wait_for(ns: str, listing: list[str], text: str, proxy: ManagedProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ip", "netns", "exec", ns, *listing], capture_output=True, text=True).stdout
        if text in out:
            return
        if proxy.proc.poll() is not None:
            raise RuntimeError(f"the proxy exited:\n{proxy.log.read_text()[-2000:]}")
        time.sleep(0.005)
    raise TimeoutError(f"{text} not in the kernel after {timeout:.0f}s:\n{proxy.log.read_text()[-2000:]}")


def _ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:,.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def _verdict(value: float, target: float | None) -> str:
    if target is None or math.isnan(value):
        return ""
    return f"[green]✓[/] ≤ {_ms(target)}" if value <= target else f"[bold red]✗[/] ≤ {_ms(target)}"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 Services only, fewer repetitions")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="Service counts (default 1000 10000)")
    p.add_argument("--modes", nargs="+", default=["iptables", "nftables"], choices=["iptables", "nftables"])
    p.add_argument("--repeats", type=int, default=20, help="one-endpoint changes per size and mode")
    p.add_argument("--latency-services", type=int, default=1000, help="Services behind the latency measurement")
    p.add_argument("--latency-samples", type=int, default=30)
    p.add_argument("--no-latency", action="store_true", help="skip the apiserver-to-kernel latency rows")
    args = p.parse_args(argv)
    sizes = args.sizes or ([1000] if args.quick else [1000, 10000])
    repeats = 6 if args.quick else args.repeats
    console = Console()
    console.width = max(console.width, 150)
    sync_rows: list[SyncRow] = []
    for n in sizes:
        for mode in args.modes:
            console.log(f"{mode}: {n:,} Services x {ENDPOINTS} endpoints")
            sync_rows.append(measure_sync(mode, n, repeats))
    latency_rows: list[LatencyRow] = []
    if not args.no_latency:
        for mode in args.modes:
            console.log(f"{mode}: network programming latency at {args.latency_services:,} Services")
            latency_rows.append(measure_latency(mode, args.latency_services,
                                                10 if args.quick else args.latency_samples))
    table = Table(title="kubelab proxy: sync time (rules generated and written into a scratch namespace's kernel)")
    for col in ("mode", "Services", "full sync", "1-endpoint change p50", "p99", "target", "rules in the kernel"):
        table.add_column(col, justify="right" if col not in ("mode", "target", "rules in the kernel") else "left")
    for r in sync_rows:
        table.add_row(r.mode, f"{r.services:,}", _ms(r.full), _ms(r.change_p50), _ms(r.change_p99),
                      _verdict(r.change_p99, TARGETS.get((r.mode, r.services))), r.rules)
    console.print(table)
    if latency_rows:
        lt = Table(title="network programming latency: EndpointSlice update through the apiserver -> rule in kernel")
        for col in ("mode", "Services", "samples", "p50", "p99", "target"):
            lt.add_column(col)
        for lr in latency_rows:
            lt.add_row(lr.mode, f"{lr.services:,}", str(lr.samples), _ms(lr.p50), _ms(lr.p99),
                       _verdict(lr.p99, NPL_TARGET))
        console.print(lt)


if __name__ == "__main__":
    main()
