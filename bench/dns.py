"""`python -m bench.dns`: how fast cluster DNS answers, with 1,000 Services.

Starts a fresh etcd and apiserver (bench/_cluster.py), creates N Services
in one namespace (default 1,000; every tenth headless, with an
EndpointSlice of three ready endpoints and a named port), starts
`python -m clusterdns` on a free loopback port, and waits until the last
Service resolves. Then, for each scenario, W client coroutines in this
process each send one query, wait for its answer and send the next, over
loopback only, for a fixed number of queries (bounded, and each query
times out after 2 s, counted as an error):

* A, hit: `<svc>.<ns>.svc.cluster.local` for random Services (UDP);
* A, search-path miss: `<svc>.<ns>.svc.cluster.local.<ns>.svc.cluster.local`,
  the NXDOMAIN a pod's resolver produces for every lookup before the hit;
* SRV, headless: `_web._tcp.<svc>...`, three targets plus their A records;
* PTR: a cluster IP back to its Service;
* A over TCP: one connection per client, many queries on it.

Also printed: how long one new Service takes from its create call to
resolving (event to answer, over the watch), and the server's RSS.
Queries/s is over each scenario's wall time. The clients share the two
cores with the server, so the figures are a floor. Every process started
is stopped at the end, however the run ends.

    python -m bench.dns                 # 1,000 services, 20,000 queries per scenario
    python -m bench.dns --quick         # 200 services, 2,000 queries
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.message
import dns.rcode
import dns.reversename
from rich.console import Console
from rich.table import Table

from api import from_dict
from client import ClientConfig, Clientset
from deploy.local import ComponentProcess, free_port
from proto import core_pb2, discovery_pb2

from ._cluster import Cluster, memory_of
from ._stats import load_average, percentile

NAMESPACE = "bench-dns"
ZONE = "cluster.local"
TIMEOUT = 2.0
CREATORS = 16


@dataclass
class Result:
    scenario: str
    queries: int
    errors: int
    seconds: float
    latencies: list[float]


def service(i: int) -> core_pb2.Service:
    spec: dict[str, object] = {"ports": [{"name": "web", "port": 80}]}
    if i % 10 == 0:
        spec["clusterIP"] = "None"
    else:
        spec["selector"] = {"app": f"svc-{i}"}
    return from_dict(core_pb2.Service, {"metadata": {"name": f"svc-{i}"}, "spec": spec})


def endpoint_slice(i: int) -> discovery_pb2.EndpointSlice:
    return from_dict(discovery_pb2.EndpointSlice, {
        "metadata": {"name": f"svc-{i}-1", "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
        "addressType": "IPv4", "ports": [{"name": "web", "protocol": "TCP", "port": 8080}],
        "endpoints": [{"addresses": [f"10.250.{i // 250}.{i % 250 + j}"], "conditions": {"ready": True},
                       "hostname": f"svc-{i}-{j}"} for j in range(3)]})


async def populate(cs: Clientset, count: int) -> list[str]:
    """Create the Services (and headless ones' slices); their cluster IPs."""
    await cs.resource(core_pb2.Namespace).create(core_pb2.Namespace(metadata={"name": NAMESPACE}))
    services = cs.resource(core_pb2.Service, NAMESPACE)
    slices = cs.resource(discovery_pb2.EndpointSlice, NAMESPACE)
    todo = iter(range(count))
    ips: list[str] = []

    async def creator() -> None:
        for i in todo:
            svc = await services.create(service(i))
            if svc.spec.clusterIP == "None":
                await slices.create(endpoint_slice(i))
            else:
                ips.append(svc.spec.clusterIP)
    await asyncio.gather(*(creator() for _ in range(CREATORS)))
    return ips


async def udp_worker(port: int, make: Callable[[], bytes], want: int, count: int, out: Result) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        for _ in range(count):
            wire = make()
            start = time.perf_counter()
            await loop.sock_sendall(sock, wire)
            try:
                reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), TIMEOUT)
            except TimeoutError:
                out.errors += 1
                continue
            out.latencies.append(time.perf_counter() - start)
            if reply[:2] != wire[:2] or reply[3] & 0x0F != want:
                out.errors += 1


async def tcp_worker(port: int, make: Callable[[], bytes], want: int, count: int, out: Result) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            wire = make()
            start = time.perf_counter()
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
            try:
                length = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), TIMEOUT))[0]
                reply = await asyncio.wait_for(reader.readexactly(length), TIMEOUT)
            except TimeoutError:
                out.errors += 1
                break
            out.latencies.append(time.perf_counter() - start)
            if reply[:2] != wire[:2] or reply[3] & 0x0F != want:
                out.errors += 1
    finally:
        writer.close()
        await writer.wait_closed()


def query(name: str, rdtype: str) -> bytes:
    return dns.message.make_query(name, rdtype).to_wire()


def pool(make: Callable[[], bytes], size: int = 512) -> Callable[[], bytes]:
    """Queries rendered before the clock starts, so the clients spend
    their share of the CPU sending, not building messages."""
    wires = [make() for _ in range(size)]
    rng = random.Random(11)
    return lambda: rng.choice(wires)


async def scenario(name: str, port: int, make: Callable[[], bytes], *, want: int, queries: int, clients: int,
                   tcp: bool = False) -> Result:
    out = Result(name, queries, 0, 0.0, [])
    worker = tcp_worker if tcp else udp_worker
    start = time.perf_counter()
    await asyncio.gather(*(worker(port, make, want, queries // clients, out) for _ in range(clients)))
    out.seconds = time.perf_counter() - start
    out.queries = len(out.latencies) + out.errors
    return out


async def wait_resolves(port: int, name: str, deadline: float = 120.0) -> float:
    """Seconds until `name` answers NOERROR with an answer."""
    start = time.perf_counter()
    wire = query(name, "A")
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
        while time.perf_counter() - start < deadline:
            await loop.sock_sendall(sock, wire)
            try:
                reply = dns.message.from_wire(await asyncio.wait_for(loop.sock_recv(sock, 65535), TIMEOUT))
                if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                    return time.perf_counter() - start
            except TimeoutError:
                pass
            await asyncio.sleep(0.005)
    raise TimeoutError(f"{name} did not resolve within {deadline:.0f}s")


async def run(cluster: Cluster, services: int, queries: int, clients: int) -> tuple[list[Result], dict[str, float]]:
    cs = Clientset.connect(ClientConfig(server=cluster.target))
    dns_port = free_port()
    proc: ComponentProcess | None = None
    try:
        t0 = time.perf_counter()
        ips = await populate(cs, services)
        created = time.perf_counter() - t0
        proc = ComponentProcess("clusterdns", cluster.target, log=cluster.workdir / "clusterdns.log",
                                extra=["--bind-address", "127.0.0.1", "--port", str(dns_port)])
        await asyncio.to_thread(proc.wait_ready, 120.0)
        last = f"svc-{services - 1}.{NAMESPACE}.svc.{ZONE}."
        await wait_resolves(dns_port, last)
        await cs.resource(core_pb2.Service, NAMESPACE).create(service(services + 1))
        propagation = await wait_resolves(dns_port, f"svc-{services + 1}.{NAMESPACE}.svc.{ZONE}.")
        rng = random.Random(7)
        headless = [i for i in range(services) if i % 10 == 0]
        suffix = f"{NAMESPACE}.svc.{ZONE}."
        plans = [
            ("A, hit (udp)", lambda: query(f"svc-{rng.randrange(services)}.{suffix}", "A"), dns.rcode.NOERROR, False),
            ("A, search-path miss (udp)", lambda: query(f"svc-{rng.randrange(services)}.{suffix}{suffix}", "A"),
             dns.rcode.NXDOMAIN, False),
            ("SRV, headless (udp)", lambda: query(f"_web._tcp.svc-{rng.choice(headless)}.{suffix}", "SRV"),
             dns.rcode.NOERROR, False),
            ("PTR, cluster IP (udp)", lambda: dns.message.make_query(
                dns.reversename.from_address(rng.choice(ips)), "PTR").to_wire(), dns.rcode.NOERROR, False),
            ("A, hit (tcp)", lambda: query(f"svc-{rng.randrange(services)}.{suffix}", "A"), dns.rcode.NOERROR, True),
        ]
        results = [await scenario(name, dns_port, pool(make), want=want, queries=queries, clients=clients, tcp=tcp)
                   for name, make, want, tcp in plans]
        memory = memory_of(proc.pid)
        return results, {"created": created, "propagation": propagation, "rss": memory.get("VmRSS", 0.0),
                         "hwm": memory.get("VmHWM", 0.0)}
    finally:
        if proc is not None:
            proc.stop()
        await cs.close()


def print_results(results: list[Result], extra: dict[str, float], services: int, clients: int) -> None:
    table = Table(title=f"cluster DNS: {services:,} Services, {clients} clients on loopback",
                  caption=f"a new Service resolved {extra['propagation'] * 1000:,.0f} ms after its create call; "
                          f"server RSS {extra['rss']:,.0f} MB (peak {extra['hwm']:,.0f} MB); "
                          f"load average {load_average()[0]:.2f}", caption_justify="left")
    for column in ("Scenario", "Queries", "Errors", "Queries/s", "p50", "p99"):
        table.add_column(column, justify="left" if column == "Scenario" else "right")
    for r in results:
        lat = sorted(r.latencies)
        table.add_row(r.scenario, f"{r.queries:,}", f"{r.errors:,}", f"{r.queries / r.seconds:,.0f}",
                      f"{percentile(lat, 50) * 1000:.2f} ms", f"{percentile(lat, 99) * 1000:.2f} ms")
    Console().print(table)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dns", description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--queries", type=int, default=20000, help="per scenario")
    p.add_argument("--clients", type=int, default=8, help="concurrent client coroutines")
    p.add_argument("--quick", action="store_true", help="200 services, 2,000 queries per scenario")
    p.add_argument("--keep", action="store_true", help="keep the data dir and logs")
    args = p.parse_args()
    if args.quick:
        args.services, args.queries = 200, 2000
    with Cluster(keep=args.keep) as cluster:
        results, extra = asyncio.run(run(cluster, args.services, args.queries, args.clients))
    print_results(results, extra, args.services, args.clients)


if __name__ == "__main__":
    main()
