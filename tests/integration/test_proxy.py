"""The proxy process in a real node network namespace, with real traffic,
in iptables and nftables modes (ipvs: refused on a kernel without ip_vs,
tested where it has one).

Each mode gets a scratch node namespace (`kl-t-...`) holding a dummy
"eth0" (a veth to an otherwise empty namespace) with the node's address and a default route, two pod namespaces
joined to it by routed veth pairs (10.244.1.0/30 and .4/30, inside the
cluster CIDR 10.244.0.0/16), a tiny TCP+UDP server in each pod that
answers with its pod's name, and `python -m proxy` started inside the node
namespace with `ip netns exec`. The proxy reaches the apiserver through a
unix socket (a filesystem path crosses network namespaces; 127.0.0.1 does
not). Tests create Services and hand-written EndpointSlices through the
apiserver, wait for the rules (`iptables-save` / `nft list` inside the
namespace) and then send traffic from the node or from a pod. Nothing
touches the root namespace's rules; every namespace and process is removed
afterwards, whatever happens.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api import from_dict
from client import ClientConfig, SyncClientset
from deploy.local import APIServerProcess, ManagedProcess
from proto import core_pb2, discovery_pb2

from .conftest import Etcd

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")]

NODE_IP = "198.51.100.10"
PODS = {"a": ("10.244.1.1", "10.244.1.2"), "b": ("10.244.1.5", "10.244.1.6")}  # node side, pod side
TCP_PORT, UDP_PORT = 8080, 5353

SERVER = f"UDP_PORT, TCP_PORT = {UDP_PORT}, {TCP_PORT}\n" + """
import socket, sys, threading
name = sys.argv[1].encode()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", UDP_PORT))
def answer_udp():
    while True:
        _, peer = udp.recvfrom(100)
        udp.sendto(name, peer)
threading.Thread(target=answer_udp, daemon=True).start()
tcp = socket.socket()
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", TCP_PORT))
tcp.listen(64)
print("ready", flush=True)
while True:
    conn, _ = tcp.accept()
    conn.sendall(name)
    conn.close()
"""

PROBE = """
import socket, sys
proto, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sport = int(sys.argv[5]) if len(sys.argv) > 5 else 0
for _ in range(count):
    try:
        if proto == "tcp":
            with socket.create_connection((host, port), timeout=5) as s:
                print(s.recv(100).decode() or "empty")
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", sport))
                s.settimeout(3)
                s.sendto(b"hi", (host, port))
                print(s.recv(100).decode())
    except ConnectionRefusedError:
        print("refused")
    except (TimeoutError, socket.timeout):
        print("timeout")
    except OSError as err:
        print("error:" + err.__class__.__name__ + ":" + str(err))
"""


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@dataclass
class Node:
    mode: str
    ns: str
    pods: dict[str, str]  # pod name -> its namespace
    config: ClientConfig
    proxy: ManagedProcess
    probe_file: Path

    def probe(self, proto: str, host: str, port: int, count: int = 1, *, source_port: int = 0,
              from_pod: str = "") -> list[str]:
        ns = self.pods[from_pod] if from_pod else self.ns
        out = sh("ip", "netns", "exec", ns, sys.executable, str(self.probe_file), proto, host, str(port), str(count),
                 str(source_port))
        return out.split()

    def rules(self) -> str:
        if self.mode == "nftables":
            return sh("ip", "netns", "exec", self.ns, "nft", "list", "ruleset")
        return sh("ip", "netns", "exec", self.ns, "iptables-save")

    def wait_for_rules(self, text: str, present: bool = True, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rules = self.rules()
            if (text in rules) == present:
                return rules
            if self.proxy.proc.poll() is not None:
                pytest.fail(f"the proxy exited:\n{self.proxy.log.read_text()[-3000:]}")
            time.sleep(0.1)
        pytest.fail(f"{text!r} {'never appeared in' if present else 'never left'} the {self.mode} rules:\n"
                    f"{self.rules()[-3000:]}\nproxy log:\n{self.proxy.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def unix_apiserver(etcd: Etcd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[APIServerProcess]:
    work = tmp_path_factory.mktemp("proxy")
    proc = APIServerProcess(etcd.url, unix_socket=work / "apiserver.sock", log=work / "apiserver.log").wait_ready()
    yield proc
    proc.stop()


def _topology(tag: str, made: list[str]) -> tuple[str, dict[str, str]]:
    """The node namespace, its uplink namespace and the pods; every
    namespace is added to `made` as soon as it exists."""
    node, outside = f"kl-t-{tag}-node", f"kl-t-{tag}-out"
    for ns in (node, outside):
        sh("ip", "netns", "add", ns)
        made.append(ns)
    run = ["ip", "netns", "exec", node]
    sh(*run, "ip", "link", "set", "lo", "up")
    # the node's "eth0" (no dummy module on this kernel: a veth whose far end sits in a namespace of its own)
    sh(*run, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "uplink", "netns", outside)
    sh(*run, "ip", "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
    sh(*run, "ip", "link", "set", "eth0", "up")
    sh("ip", "netns", "exec", outside, "ip", "link", "set", "uplink", "up")
    sh(*run, "ip", "route", "add", "default", "dev", "eth0")
    sh(*run, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    pods = {}
    for name, (node_side, pod_side) in PODS.items():
        pod = f"kl-t-{tag}-{name}"
        sh("ip", "netns", "add", pod)
        made.append(pod)
        pods[name] = pod
        sh(*run, "ip", "link", "add", f"veth-{name}", "type", "veth", "peer", "name", "eth0", "netns", pod)
        sh(*run, "ip", "addr", "add", f"{node_side}/30", "dev", f"veth-{name}")
        sh(*run, "ip", "link", "set", f"veth-{name}", "up")
        prun = ["ip", "netns", "exec", pod]
        sh(*prun, "ip", "link", "set", "lo", "up")
        sh(*prun, "ip", "addr", "add", f"{pod_side}/30", "dev", "eth0")
        sh(*prun, "ip", "link", "set", "eth0", "up")
        sh(*prun, "ip", "route", "add", "default", "via", node_side)
    return node, pods


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def node(request: pytest.FixtureRequest, unix_apiserver: APIServerProcess,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    mode = str(request.param)
    tag = uuid.uuid4().hex[:6]
    work = tmp_path_factory.mktemp(f"proxy-{mode}")
    (work / "server.py").write_text(SERVER)
    probe = work / "probe.py"
    probe.write_text(PROBE)
    namespaces: list[str] = []
    processes: list[ManagedProcess] = []
    try:
        node_ns, pods = _topology(tag, namespaces)
        for name, pod in pods.items():
            server = ManagedProcess(["ip", "netns", "exec", pod, sys.executable, str(work / "server.py"), name],
                                    work / f"server-{name}.log")
            processes.append(server)
        proxy = ManagedProcess(
            ["ip", "netns", "exec", node_ns, sys.executable, "-m", "proxy", "--server",
             f"unix://{unix_apiserver.argv[unix_apiserver.argv.index('--unix-socket') + 1]}", "--proxy-mode", mode,
             "--hostname-override", "node-a", "--cluster-cidr", "10.244.0.0/16", "--min-sync-period", "100ms",
             "-v", "debug"], work / "proxy.log")
        processes.append(proxy)
        yield Node(mode, node_ns, pods, ClientConfig(server=unix_apiserver.target), proxy, probe)
    finally:
        for proc in reversed(processes):
            proc.stop()
        for ns in reversed(namespaces):
            subprocess.run(["ip", "netns", "delete", ns], check=False)


@pytest.fixture
def api(node: Node) -> Iterator[tuple[SyncClientset, str]]:
    cs = SyncClientset(node.config)
    ns = f"t-{uuid.uuid4().hex[:8]}"
    cs.resource(core_pb2.Namespace).create(core_pb2.Namespace(metadata={"name": ns}))
    try:
        yield cs, ns
    finally:
        cs.resource(core_pb2.Namespace).delete(ns)
        cs.close()


def make_service(cs: SyncClientset, ns: str, name: str, *, protocol: str = "TCP", port: int = 80,
                 target: int = TCP_PORT, **spec: Any) -> core_pb2.Service:
    body = {"ports": [{"name": "p", "port": port, "protocol": protocol, "targetPort": target}], **spec}
    svc = from_dict(core_pb2.Service, {"metadata": {"name": name, "namespace": ns}, "spec": body})
    return cs.resource(core_pb2.Service, ns).create(svc)


def make_slice(cs: SyncClientset, ns: str, service: str, pods: list[str], *, protocol: str = "TCP",
               port: int = TCP_PORT, name: str = "") -> discovery_pb2.EndpointSlice:
    es = from_dict(discovery_pb2.EndpointSlice, {
        "metadata": {"name": name or f"{service}-x", "namespace": ns,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [PODS[p][1]], "conditions": {"ready": True}} for p in pods],
        "ports": [{"name": "p", "port": port, "protocol": protocol}]})
    client = cs.resource(discovery_pb2.EndpointSlice, ns)
    try:
        current = client.get(es.metadata.name)
    except Exception:
        return client.create(es)
    es.metadata.resourceVersion = current.metadata.resourceVersion
    return client.update(es)


def programmed(node: Node, svc: core_pb2.Service) -> str:
    """Text the rules hold once `svc`'s first port has endpoints programmed
    (not merely its reject rule)."""
    port = svc.spec.ports[0]
    if node.mode == "nftables":
        return f"{svc.spec.clusterIP} . {port.protocol.lower()} . {port.port} : goto service-"
    return f"{svc.metadata.namespace}/{svc.metadata.name}:{port.name} cluster IP"


def test_cluster_ip_reaches_every_backend(node: Node, api: tuple[SyncClientset, str]) -> None:
    cs, ns = api
    svc = make_service(cs, ns, "web")
    make_slice(cs, ns, "web", ["a", "b"])
    ip = svc.spec.clusterIP
    rules = node.wait_for_rules(programmed(node, svc))
    if node.mode == "iptables":
        assert "-m statistic --mode random --probability 0.50000000000" in rules
        assert f"-j DNAT --to-destination {PODS['a'][1]}:{TCP_PORT}" in rules
    else:
        assert "numgen random mod 2 vmap @endpoints-" in rules
        assert f"dnat to {PODS['b'][1]}:{TCP_PORT}" in rules
    answers = node.probe("tcp", ip, 80, 40)
    assert set(answers) == {"a", "b"}, answers


def test_headless_and_external_name_services_get_no_rules(node: Node, api: tuple[SyncClientset, str]) -> None:
    cs, ns = api
    make_service(cs, ns, "headless", clusterIP="None")
    make_slice(cs, ns, "headless", ["a"])
    make_service(cs, ns, "ext", type="ExternalName", externalName="db.example.org")
    marker = make_service(cs, ns, "marker")  # no endpoints: a reject appears, so the proxy has seen the others
    rules = node.wait_for_rules(f"{marker.spec.clusterIP} . tcp . 80" if node.mode == "nftables"
                                else f"{ns}/marker")
    assert f"{ns}/headless" not in rules and f"{ns}/ext" not in rules


def test_a_service_without_endpoints_is_refused_at_once(node: Node, api: tuple[SyncClientset, str]) -> None:
    cs, ns = api
    svc = make_service(cs, ns, "empty")
    ip = svc.spec.clusterIP
    node.wait_for_rules(f"{ip} . tcp . 80 : goto reject-chain" if node.mode == "nftables"
                        else f"{ns}/empty:p has no endpoints")
    assert node.probe("tcp", ip, 80, 3) == ["refused"] * 3, "rejected, not left to time out"


def test_node_port_on_the_node_address(node: Node, api: tuple[SyncClientset, str]) -> None:
    cs, ns = api
    svc = make_service(cs, ns, "np", type="NodePort")
    make_slice(cs, ns, "np", ["a"])
    node_port = svc.spec.ports[0].nodePort
    assert node_port
    node.wait_for_rules(f"tcp . {node_port} : goto external-" if node.mode == "nftables"
                        else f"--dport {node_port} -j KUBE-EXT-")
    assert node.probe("tcp", NODE_IP, node_port, 3) == ["a"] * 3
    assert node.probe("tcp", NODE_IP, node_port, 1, from_pod="b") == ["a"]


def test_hairpin_a_pod_reaches_itself_through_its_service(node: Node, api: tuple[SyncClientset, str]) -> None:
    cs, ns = api
    svc = make_service(cs, ns, "self")
    make_slice(cs, ns, "self", ["a"])
    node.wait_for_rules(programmed(node, svc))
    assert node.probe("tcp", svc.spec.clusterIP, 80, 3, from_pod="a") == ["a"] * 3


def test_session_affinity_client_ip(node: Node, api: tuple[SyncClientset, str]) -> None:
    cs, ns = api
    svc = make_service(cs, ns, "sticky", sessionAffinity="ClientIP",
                       sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})
    make_slice(cs, ns, "sticky", ["a", "b"])
    rules = node.wait_for_rules(programmed(node, svc))
    assert ("timeout 10m" in rules) if node.mode == "nftables" else ("--seconds 600 --reap" in rules)
    answers = node.probe("tcp", svc.spec.clusterIP, 80, 20)
    assert len(set(answers)) == 1 and answers[0] in ("a", "b"), answers


def test_stale_udp_conntrack_entries_are_flushed(node: Node, api: tuple[SyncClientset, str]) -> None:
    cs, ns = api
    svc = make_service(cs, ns, "dns", protocol="UDP", port=53, target=UDP_PORT)
    make_slice(cs, ns, "dns", ["a"], protocol="UDP", port=UDP_PORT)
    ip = svc.spec.clusterIP
    node.wait_for_rules(programmed(node, svc))
    assert node.probe("udp", ip, 53, source_port=40053) == ["a"]
    entries = sh("ip", "netns", "exec", node.ns, "conntrack", "-L", "-p", "udp", "--orig-dst", ip)
    assert PODS["a"][1] in entries
    make_slice(cs, ns, "dns", ["b"], protocol="UDP", port=UDP_PORT)
    node.wait_for_rules(f"dnat to {PODS['b'][1]}:{UDP_PORT}" if node.mode == "nftables"
                        else f"--to-destination {PODS['b'][1]}:{UDP_PORT}")
    deadline = time.monotonic() + 10
    while PODS["a"][1] in sh("ip", "netns", "exec", node.ns, "conntrack", "-L", "-p", "udp", "--orig-dst", ip):
        assert time.monotonic() < deadline, "the entry to the removed endpoint was never flushed"
        time.sleep(0.1)
    # the same client flow (same source port) now reaches the new endpoint, not the old one
    assert node.probe("udp", ip, 53, source_port=40053) == ["b"]


def test_metrics_and_health(node: Node, api: tuple[SyncClientset, str]) -> None:
    cs, ns = api
    svc = make_service(cs, ns, "m")
    node.wait_for_rules(f"{svc.spec.clusterIP} . tcp . 80" if node.mode == "nftables" else f"{ns}/m")
    script = ("import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:10249/metrics', timeout=5)"
              ".read().decode())")
    text = sh("ip", "netns", "exec", node.ns, sys.executable, "-c", script)
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values["kubeproxy_sync_proxy_rules_last_timestamp_seconds"] > time.time() - 3600
    assert values["kubeproxy_sync_proxy_rules_duration_seconds_count"] >= 1
    assert values["kubeproxy_network_programming_duration_seconds_count"] >= 1
    kinds = {k for k in values if k.startswith("kubeproxy_sync_proxy_rules_total")}
    assert kinds, "rule counts are exported"
    health = ("import grpc;from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g;"
              "c=grpc.insecure_channel('127.0.0.1:10256');"
              "print(g.HealthStub(c).Check(h.HealthCheckRequest(), timeout=5).status)")
    assert sh("ip", "netns", "exec", node.ns, sys.executable, "-c", health).strip() == "1"  # SERVING


def test_cleanup_removes_the_rules(node: Node, api: tuple[SyncClientset, str]) -> None:
    """Last in the module: `--cleanup` in a scratch namespace of its own
    with rules written there by a proxy run against the same apiserver."""
    cs, ns = api
    svc = make_service(cs, ns, "c")
    wanted = f"{svc.spec.clusterIP} . tcp . 80" if node.mode == "nftables" else f"{ns}/c"
    tag = uuid.uuid4().hex[:6]
    scratch = f"kl-t-{tag}-clean"
    sh("ip", "netns", "add", scratch)
    try:
        run = ["ip", "netns", "exec", scratch, sys.executable, "-m", "proxy", "--proxy-mode", node.mode,
               "--server", node.proxy.argv[node.proxy.argv.index("--server") + 1]]
        proc = subprocess.Popen([*run, "--metrics-bind-address", "", "--health-bind-address", ""],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            listing = ["nft", "list", "ruleset"] if node.mode == "nftables" else ["iptables-save"]
            while wanted not in sh("ip", "netns", "exec", scratch, *listing):
                assert time.monotonic() < deadline, "the second proxy never wrote its rules"
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(10)
        sh(*run, "--cleanup")
        left = sh("ip", "netns", "exec", scratch, *listing)
        assert "KUBE-" not in left and "kube-proxy" not in left
    finally:
        subprocess.run(["ip", "netns", "delete", scratch], check=False)


def test_ipvs_mode_refuses_without_ip_vs(unix_apiserver: APIServerProcess) -> None:
    if os.path.exists("/proc/net/ip_vs"):
        pytest.skip("this kernel has ip_vs; the refusal is for kernels without it")
    done = subprocess.run([sys.executable, "-m", "proxy", "--proxy-mode", "ipvs", "--server", unix_apiserver.target],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "ipvs proxy mode needs the ip_vs kernel module, which this kernel does not have" in done.stderr


@pytest.mark.skipif(not os.path.exists("/proc/net/ip_vs"),
                    reason="ipvs proxy mode needs the ip_vs kernel module, which this kernel does not have")
def test_ipvs_mode_programs_virtual_servers() -> None:
    scratch = f"kl-t-{uuid.uuid4().hex[:6]}-ipvs"
    sh("ip", "netns", "add", scratch)
    try:
        sh("ip", "netns", "exec", scratch, sys.executable, "-c",
           "from proxy import *;from proxy._types import *;"
           "n=ServicePortName('default','web','p');"
           "IpvsProxier(CommandRunner(),Options()).sync(ProxySnapshot({n:ServicePort(n,'10.96.0.10',80)},"
           f"{{n:(Endpoint('{PODS['a'][1]}',{TCP_PORT}),)}}),None)")
        table = sh("ip", "netns", "exec", scratch, "cat", "/proc/net/ip_vs")
        assert "0A60000A:0050" in table and "0AF40102:1F90" in table  # 10.96.0.10:80 -> 10.244.1.2:8080
        assert "10.96.0.10/32" in sh("ip", "netns", "exec", scratch, "ip", "addr", "show", "kube-ipvs0")
    finally:
        subprocess.run(["ip", "netns", "delete", scratch], check=False)
