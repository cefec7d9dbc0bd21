"""nftables generation without root: the verdict maps (service IP and
port -> service chain, numgen -> endpoint chains), reject for service
ports without endpoints, affinity sets, masquerade marks, and a partial
sync that sends only what differs from the last one."""

from __future__ import annotations

from proxy import NftablesProxier, Options, ProxySnapshot, ServicePort, ServicePortName
from proxy._nftables_rules import endpoint_chain, endpoints_map, service_chain, service_objects
from proxy._runner import CommandRunner
from proxy._types import Endpoint

from ._fixtures import WEB, snapshot

OPTS = Options(cluster_cidr="10.244.0.0/16")
WEB_PORT = ServicePort(WEB, "10.96.0.10", 80)


def generate(proxier: NftablesProxier, snap: ProxySnapshot, changed: set[ServicePortName] | None = None) -> list[str]:
    text, record = proxier.generate(snap, changed, (set(), set()) if changed is None else None)
    proxier._objects = record
    return text.splitlines()


def test_cluster_ip_service_chain_and_endpoint_map() -> None:
    eps = [Endpoint("10.0.0.1", 8080), Endpoint("10.0.0.2", 8080)]
    objs = service_objects(WEB_PORT, eps, OPTS)
    svc = service_chain(WEB, "tcp")
    assert svc.startswith("service-") and svc.endswith("-default/web/tcp/http")
    assert objs.elements == {("service-ips", "10.96.0.10 . tcp . 80"): f"goto {svc}"}
    assert objs.chains[svc] == ["ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
                                f"numgen random mod 2 vmap @{endpoints_map(WEB, 'tcp')}"]
    first = endpoint_chain(WEB, "tcp", eps[0])
    assert objs.maps[endpoints_map(WEB, "tcp")] == [f"0 : goto {first}",
                                                    f"1 : goto {endpoint_chain(WEB, 'tcp', eps[1])}"]
    assert objs.chains[first] == ["ip saddr 10.0.0.1 jump mark-for-masquerade",  # hairpin
                                  "meta l4proto tcp dnat to 10.0.0.1:8080"]


def test_no_endpoints_go_to_the_reject_chain() -> None:
    sp = ServicePort(ServicePortName("default", "empty", ""), "10.96.0.11", 81, protocol="UDP", node_port=30081)
    objs = service_objects(sp, [], OPTS)
    assert objs.chains == {} and objs.elements == {
        ("no-endpoint-services", "10.96.0.11 . udp . 81"): "goto reject-chain",
        ("no-endpoint-nodeports", "udp . 30081"): "goto reject-chain"}


def test_node_port_and_session_affinity() -> None:
    sp = ServicePort(WEB, "10.96.0.10", 80, node_port=30080, affinity_seconds=300)
    ep = Endpoint("10.0.0.1", 8080)
    objs = service_objects(sp, [ep], Options(masquerade_all=True))
    ext = next(c for c in objs.chains if c.startswith("external-"))
    assert objs.elements[("service-nodeports", "tcp . 30080")] == f"goto {ext}"
    assert objs.chains[ext] == ["jump mark-for-masquerade", f"goto {service_chain(WEB, 'tcp')}"]
    (aff,) = objs.sets
    chain = endpoint_chain(WEB, "tcp", ep)
    assert f"ip saddr @{aff} goto {chain}" in objs.chains[service_chain(WEB, "tcp")]
    assert f"update @{aff} {{ ip saddr timeout 300s }}" in objs.chains[chain]
    assert objs.chains[service_chain(WEB, "tcp")][0] == "ip daddr 10.96.0.10 tcp dport 80 jump mark-for-masquerade"


def test_full_sync_builds_the_table_and_drops_leftovers() -> None:
    proxier = NftablesProxier(CommandRunner(), OPTS)
    text, _ = proxier.generate(snapshot((WEB_PORT, ["10.0.0.1"])), None,
                               ({"service-OLD-x/y/tcp/", "services"}, {"affinity-OLD", "service-ips"}))
    lines = text.splitlines()
    assert lines[0] == "add table ip kube-proxy"
    assert ("add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority dstnat; policy accept; }"
            in lines)
    assert "add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips" in lines
    assert "add rule ip kube-proxy services fib daddr type local meta l4proto . th dport vmap @service-nodeports" \
        in lines
    assert "flush map ip kube-proxy service-ips" in lines
    assert "delete chain ip kube-proxy service-OLD-x/y/tcp/" in lines
    assert "delete set ip kube-proxy affinity-OLD" in lines
    assert "delete chain ip kube-proxy services" not in lines


def test_partial_sync_is_proportional_to_the_change() -> None:
    other = ServicePort(ServicePortName("default", "other", "http"), "10.96.0.12", 80)
    proxier = NftablesProxier(CommandRunner(), OPTS)
    generate(proxier, snapshot((WEB_PORT, ["10.0.0.1", "10.0.0.2"]), (other, ["10.0.1.1"])))
    lines = generate(proxier, snapshot((WEB_PORT, ["10.0.0.1"]), (other, ["10.0.1.1"])), {WEB})
    gone = endpoint_chain(WEB, "tcp", Endpoint("10.0.0.2", 8080))
    kept = endpoint_chain(WEB, "tcp", Endpoint("10.0.0.1", 8080))
    assert f"delete chain ip kube-proxy {gone}" in lines
    assert not any(kept in line for line in lines if "chain" in line.split()[1]), "an unchanged endpoint chain stays"
    assert not any("other" in line for line in lines)
    assert not any("element ip kube-proxy service-ips" in line for line in lines), "the service's key did not change"
    assert len(lines) < 12
    lines = generate(proxier, snapshot((WEB_PORT, []), (other, ["10.0.1.1"])), {WEB})
    assert "delete element ip kube-proxy service-ips { 10.96.0.10 . tcp . 80 }" in lines
    assert "add element ip kube-proxy no-endpoint-services { 10.96.0.10 . tcp . 80 : goto reject-chain }" in lines
    assert f"delete map ip kube-proxy {endpoints_map(WEB, 'tcp')}" in lines
    # deletions come after the flushes that drop the references to them
    assert lines.index(f"delete chain ip kube-proxy {kept}") > lines.index(f"flush chain ip kube-proxy {kept}")
    # the map whose elements point at the chain goes first, or the kernel refuses (EBUSY)
    assert lines.index(f"delete map ip kube-proxy {endpoints_map(WEB, 'tcp')}") < \
        lines.index(f"delete chain ip kube-proxy {kept}")
    assert generate(proxier, snapshot((WEB_PORT, []), (other, ["10.0.1.1"])), {WEB}) == [], "nothing left to do"


def test_explicit_node_addresses_fill_the_nodeport_set() -> None:
    proxier = NftablesProxier(CommandRunner(), Options(nodeport_ips=("192.0.2.1",)))
    lines = generate(proxier, snapshot())
    assert "add element ip kube-proxy nodeport-ips { 192.0.2.1 }" in lines
    assert "add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports" \
        in lines
    proxier._nodeport_ips = {"192.0.2.1"}
    proxier.options = Options(nodeport_ips=("192.0.2.2",))
    lines = generate(proxier, snapshot(), set())
    assert lines == ["delete element ip kube-proxy nodeport-ips { 192.0.2.1 }",
                     "add element ip kube-proxy nodeport-ips { 192.0.2.2 }"]
