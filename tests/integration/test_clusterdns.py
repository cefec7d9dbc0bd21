"""Cluster DNS end to end: `python -m clusterdns` against the real apiserver
(and etcd), asked over real UDP and TCP on loopback with dnspython.

Covers a ClusterIP Service appearing, changing and disappearing (A, SRV,
PTR); a headless Service following its endpoints' readiness; the
StatefulSet example from the Kubernetes documentation getting per-pod names
(`web-0.nginx.<ns>.svc.cluster.local`) through the real statefulset and
endpoint-slice controllers, with a pod simulator playing the kubelet; pod
A records; an ExternalName CNAME; NXDOMAIN with the SOA, REFUSED outside
the zone (no upstream in tests); health and /metrics.

Changes reach DNS through watches, so each check polls until the answer is
what it should be, or fails after a generous deadline with the last answer.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest

from api import decode_manifest, from_dict, load_documents
from client import Clientset
from deploy.local import APIServerProcess, ComponentProcess, free_port
from proto import apps_pb2, core_pb2, discovery_pb2
from tests.support.podsim import PodSimulator

from .conftest import start_component

pytestmark = pytest.mark.integration

DEADLINE = 30.0  # for a change to reach DNS; never a measured figure
NODES = [f"dns-node-{uuid.uuid4().hex[:6]}"]


@pytest.fixture(scope="module")
def cluster_dns(apiserver: APIServerProcess, workdir: Path) -> Iterator[tuple[ComponentProcess, int]]:
    port = free_port()
    proc = start_component("clusterdns", apiserver, workdir, "--bind-address", "127.0.0.1", "--port", str(port))
    try:
        yield proc, port
    finally:
        proc.stop()


@pytest.fixture
def port(cluster_dns: tuple[ComponentProcess, int]) -> int:
    return cluster_dns[1]


async def ask(port: int, name: str, rdtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(query, "127.0.0.1", port=port, timeout=5)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=5)


def answers(response: dns.message.Message) -> list[str]:
    """`TYPE rdata` of every answer record, sorted, or the rcode's name when
    there is none (NXDOMAIN, NOERROR for no data, REFUSED)."""
    out = sorted(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} {rdata}"
                 for rrset in response.answer for rdata in rrset)
    return out or [dns.rcode.to_text(response.rcode())]


async def until(port: int, name: str, rdtype: str, want: list[str], *, tcp: bool = False) -> dns.message.Message:
    """Ask until the answer is `want`; fail with the last answer."""
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while True:
        response = await ask(port, name, rdtype, tcp=tcp)
        if answers(response) == want:
            return response
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{name} {rdtype}: still {answers(response)}, want {want}")
        await asyncio.sleep(0.1)


def fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local."


def reverse(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa."


def test_help_lists_the_flags_the_lab_uses() -> None:
    out = subprocess.run([sys.executable, "-m", "clusterdns", "--help"], capture_output=True, text=True, check=True)
    for flag in ("--server", "--kubeconfig", "--bind-address", "--port", "--cluster-domain", "--upstream",
                 "--health-bind-address", "--metrics-bind-address", "--ttl"):
        assert flag in out.stdout
    bad = subprocess.run([sys.executable, "-m", "clusterdns", "--upstream", "dns.example.com"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "is not an IP address" in bad.stderr


async def test_a_cluster_ip_service_appears_changes_and_disappears(client: Clientset, namespace: str,
                                                                   port: int) -> None:
    name = fqdn("web", namespace)
    assert answers(await ask(port, name)) == ["NXDOMAIN"]
    services = client.resource(core_pb2.Service, namespace)
    svc = await services.create(from_dict(core_pb2.Service, {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}))
    ip = svc.spec.clusterIP
    await until(port, name, "A", [f"{name} A {ip}"])
    await until(port, name, "A", [f"{name} A {ip}"], tcp=True)
    await until(port, reverse(ip), "PTR", [f"{reverse(ip)} PTR {name}"])
    await until(port, f"_http._tcp.{name}", "SRV", [f"_http._tcp.{name} SRV 0 100 80 {name}"])

    svc.spec.ports[0].name = "web"
    svc.spec.ports.add(name="metrics", port=9090, protocol="UDP")
    await services.update(svc)
    await until(port, f"_metrics._udp.{name}", "SRV", [f"_metrics._udp.{name} SRV 0 100 9090 {name}"])
    await until(port, f"_web._tcp.{name}", "SRV", [f"_web._tcp.{name} SRV 0 100 80 {name}"])
    assert answers(await ask(port, f"_http._tcp.{name}", "SRV")) == ["NXDOMAIN"]

    await services.delete("web")
    await until(port, name, "A", ["NXDOMAIN"])
    await until(port, reverse(ip), "PTR", ["NXDOMAIN"])


async def test_a_headless_service_follows_endpoint_readiness(client: Clientset, namespace: str, port: int) -> None:
    await client.resource(core_pb2.Service, namespace).create(from_dict(core_pb2.Service, {
        "metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}))
    slices = client.resource(discovery_pb2.EndpointSlice, namespace)
    es = await slices.create(from_dict(discovery_pb2.EndpointSlice, {
        "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.7.1"], "conditions": {"ready": True}},
                      {"addresses": ["10.244.7.2"], "conditions": {"ready": False}}],
        "ports": [{"name": "pg", "protocol": "TCP", "port": 15432}]}))
    name = fqdn("db", namespace)
    await until(port, name, "A", [f"{name} A 10.244.7.1"])
    one = f"10-244-7-1.{name}"
    await until(port, f"_pg._tcp.{name}", "SRV", [f"_pg._tcp.{name} SRV 0 100 15432 {one}"])

    es.endpoints[1].conditions.ready = True
    es = await slices.update(es)
    two = f"10-244-7-2.{name}"
    await until(port, name, "A", [f"{name} A 10.244.7.1", f"{name} A 10.244.7.2"])
    srv = await until(port, f"_pg._tcp.{name}", "SRV", [f"_pg._tcp.{name} SRV 0 100 15432 {one}",
                                                       f"_pg._tcp.{name} SRV 0 100 15432 {two}"])
    assert sorted(str(rrset.name) for rrset in srv.additional) == [one, two]
    await until(port, "2.7.244.10.in-addr.arpa.", "PTR", [f"2.7.244.10.in-addr.arpa. PTR {two}"])

    for ep in es.endpoints:
        ep.conditions.ready = False
    await slices.update(es)
    await until(port, name, "A", ["NXDOMAIN"])
    await until(port, "2.7.244.10.in-addr.arpa.", "PTR", ["NXDOMAIN"])


@pytest.fixture(scope="module")
def manager(apiserver: APIServerProcess, workdir: Path) -> Iterator[ComponentProcess]:
    proc = start_component("controller_manager", apiserver, workdir, "--leader-elect", "false",
                           "--controllers", "statefulset,endpointslice")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def sim(client: Clientset, namespace: str, manager: ComponentProcess) -> AsyncIterator[PodSimulator]:
    simulator = await PodSimulator(client, NODES, namespace=namespace).start()
    try:
        yield simulator
    finally:
        await simulator.stop()
        for node in NODES:
            try:
                await client.resource(core_pb2.Node).delete(node)
            except Exception:  # already gone
                pass


async def test_statefulset_example_pods_get_stable_names(client: Clientset, namespace: str, port: int,
                                                         manifests_dir: Path, sim: PodSimulator) -> None:
    """The documentation's StatefulSet example, with two changes so the test
    waits on no clock: Parallel pod management and minReadySeconds 0 (the
    example's OrderedReady start would hold each pod 10 s)."""
    path = manifests_dir / "controllers" / "statefulset.yaml"
    objects: list[Any] = [decode_manifest(doc) for doc in load_documents(path.read_text(), str(path))]
    svc, sts = objects
    assert isinstance(svc, core_pb2.Service) and isinstance(sts, apps_pb2.StatefulSet)
    sts.spec.replicas = 2
    sts.spec.minReadySeconds = 0
    sts.spec.podManagementPolicy = "Parallel"
    await client.resource(core_pb2.Service, namespace).create(svc)
    await client.resource(apps_pb2.StatefulSet, namespace).create(sts)

    pods = client.resource(core_pb2.Pod, namespace)
    ips: dict[str, str] = {}
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while len(ips) < 2:
        ips = {p.metadata.name: p.status.podIP for p in (await pods.list()).items if p.status.podIP}
        assert asyncio.get_running_loop().time() < deadline, f"pods not started: {ips}"
        await asyncio.sleep(0.1)
    service = fqdn("nginx", namespace)
    web0, web1 = f"web-0.{service}", f"web-1.{service}"
    await until(port, web0, "A", [f"{web0} A {ips['web-0']}"])
    await until(port, web1, "A", [f"{web1} A {ips['web-1']}"], tcp=True)
    await until(port, service, "A", sorted([f"{service} A {ips['web-0']}", f"{service} A {ips['web-1']}"]))
    await until(port, f"_web._tcp.{service}", "SRV", [f"_web._tcp.{service} SRV 0 100 80 {web0}",
                                                      f"_web._tcp.{service} SRV 0 100 80 {web1}"])
    await until(port, reverse(ips["web-0"]), "PTR", [f"{reverse(ips['web-0'])} PTR {web0}"])
    pod_name = f"{ips['web-0'].replace('.', '-')}.{namespace}.pod.cluster.local."
    await until(port, pod_name, "A", [f"{pod_name} A {ips['web-0']}"])

    await sim.set_ready(namespace, "web-1", False)
    await until(port, web1, "A", ["NXDOMAIN"])
    await until(port, service, "A", [f"{service} A {ips['web-0']}"])


async def test_external_name_nxdomain_and_refused(client: Clientset, namespace: str, port: int) -> None:
    await client.resource(core_pb2.Service, namespace).create(from_dict(core_pb2.Service, {
        "metadata": {"name": "db"}, "spec": {"type": "ExternalName", "externalName": "my.database.example.com"}}))
    name = fqdn("db", namespace)
    await until(port, name, "A", [f"{name} CNAME my.database.example.com."])
    missing = await ask(port, fqdn("nosuch", namespace))
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.flags & dns.flags.AA
    assert [dns.rdatatype.to_text(r.rdtype) for r in missing.authority] == ["SOA"]
    outside = await ask(port, "example.com.", tcp=True)
    assert outside.rcode() == dns.rcode.REFUSED  # no --upstream: nothing leaves the machine
    version = await ask(port, "dns-version.cluster.local.", "TXT")
    assert answers(version) == ['dns-version.cluster.local. TXT "1.1.0"']


async def test_metrics_count_queries(cluster_dns: tuple[ComponentProcess, int]) -> None:
    proc, port = cluster_dns
    await ask(port, "kubernetes.default.svc.cluster.local.")
    url = f"http://127.0.0.1:{proc.metrics_port}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    assert 'clusterdns_dns_requests_total{proto="udp",type="A"}' in text
    assert "clusterdns_records " in text and "clusterdns_dns_request_duration_seconds_bucket" in text
