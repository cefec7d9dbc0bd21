"""iptables rule generation without root: kube-proxy's chain layout for
ClusterIP and NodePort, statistic-module load balancing, session
affinity, REJECT for service ports without endpoints, hairpin and
off-cluster masquerade marks, and what a partial sync writes and deletes."""

from __future__ import annotations

import re

from proxy import IptablesProxier, Options, ProxySnapshot, ServicePort, ServicePortName
from proxy._iptables_rules import endpoint_chain, missing_jumps, service_chain
from proxy._runner import CommandRunner
from proxy._types import Endpoint

from ._fixtures import WEB, snapshot

OPTS = Options(cluster_cidr="10.244.0.0/16")
WEB_PORT = ServicePort(WEB, "10.96.0.10", 80)
EMPTY = ServicePort(ServicePortName("default", "empty", ""), "10.96.0.11", 81, node_port=30081)


def generate(snap: ProxySnapshot, changed: set[ServicePortName] | None = None,
             proxier: IptablesProxier | None = None) -> str:
    proxier = proxier or IptablesProxier(CommandRunner(), OPTS)
    text, record, _ = proxier.generate(snap, changed, set() if changed is None else None)
    proxier._chains = record
    return text


def rules(text: str, chain: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"-A {chain} ")]


def test_chain_names_hash_like_kube_proxy() -> None:
    svc = service_chain(WEB, "tcp")
    assert re.fullmatch(r"KUBE-SVC-[A-Z2-7]{16}", svc)
    assert svc == service_chain(WEB, "TCP") != service_chain(WEB, "udp")
    sep = endpoint_chain(WEB, "tcp", Endpoint("10.0.0.1", 8080))
    assert re.fullmatch(r"KUBE-SEP-[A-Z2-7]{16}", sep) and sep != endpoint_chain(WEB, "tcp", Endpoint("10.0.0.2", 8080))


def test_cluster_ip_balances_with_the_statistic_module() -> None:
    text = generate(snapshot((WEB_PORT, ["10.0.0.1", "10.0.0.2", "10.0.0.3"])))
    svc = service_chain(WEB, "tcp")
    (entry,) = [r for r in rules(text, "KUBE-SERVICES") if "cluster IP" in r]
    assert "-d 10.96.0.10 --dport 80" in entry and entry.endswith(f"-j {svc}")
    lines = rules(text, svc)
    assert "! -s 10.244.0.0/16 -j KUBE-MARK-MASQ" in lines[0], "off-cluster clients are masqueraded"
    assert "--probability 0.3333333333" in lines[1] and "--probability 0.5000000000" in lines[2]
    assert "statistic" not in lines[3] and lines[3].endswith(endpoint_chain(WEB, "tcp", Endpoint("10.0.0.3", 8080)))
    sep = endpoint_chain(WEB, "tcp", Endpoint("10.0.0.1", 8080))
    assert rules(text, sep) == [
        f'-A {sep} -m comment --comment "default/web:http" -s 10.0.0.1 -j KUBE-MARK-MASQ',  # hairpin
        f'-A {sep} -m comment --comment "default/web:http" -m tcp -p tcp -j DNAT --to-destination 10.0.0.1:8080']
    assert rules(text, "KUBE-MARK-MASQ") == ["-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"]
    assert any("MASQUERADE" in r for r in rules(text, "KUBE-POSTROUTING"))


def test_masquerade_all_and_no_cluster_cidr() -> None:
    snap = snapshot((WEB_PORT, ["10.0.0.1"]))
    everything = IptablesProxier(CommandRunner(), Options(masquerade_all=True))
    assert " ! -s " not in generate(snap, proxier=everything)
    assert "-j KUBE-MARK-MASQ" in rules(generate(snap, proxier=everything), service_chain(WEB, "tcp"))[0]
    bare = generate(snap, proxier=IptablesProxier(CommandRunner(), Options()))
    assert all("KUBE-MARK-MASQ" not in r for r in rules(bare, service_chain(WEB, "tcp")))


def test_node_port_goes_through_the_external_chain() -> None:
    sp = ServicePort(WEB, "10.96.0.10", 80, node_port=30080)
    text = generate(snapshot((sp, ["10.0.0.1"])))
    (np,) = rules(text, "KUBE-NODEPORTS")
    ext = np.rsplit(" ", 1)[1]
    assert ext.startswith("KUBE-EXT-") and "--dport 30080" in np
    assert rules(text, ext)[0].endswith("-j KUBE-MARK-MASQ")
    assert rules(text, ext)[1] == f"-A {ext} -j {service_chain(WEB, 'tcp')}"
    assert rules(text, "KUBE-SERVICES")[-1].endswith("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    listed = generate(snapshot((sp, ["10.0.0.1"])),
                      proxier=IptablesProxier(CommandRunner(), Options(nodeport_ips=("192.0.2.1", "192.0.2.2"))))
    assert [r.split(" -d ")[1].split()[0] for r in rules(listed, "KUBE-SERVICES") if "KUBE-NODEPORTS" in r] == \
        ["192.0.2.1", "192.0.2.2"]


def test_session_affinity_uses_the_recent_module() -> None:
    sp = ServicePort(WEB, "10.96.0.10", 80, affinity_seconds=60)
    text = generate(snapshot((sp, ["10.0.0.1", "10.0.0.2"])))
    sep = endpoint_chain(WEB, "tcp", Endpoint("10.0.0.1", 8080))
    svc_rules = rules(text, service_chain(WEB, "tcp"))
    assert f"-m recent --name {sep} --rcheck --seconds 60 --reap -j {sep}" in svc_rules[1]
    assert f"-m recent --name {sep} --set" in rules(text, sep)[1]


def test_no_endpoints_rejects_in_the_filter_table() -> None:
    text = generate(snapshot((EMPTY, [])))
    filter_part = text.split("*nat")[0]
    assert rules(filter_part, "KUBE-SERVICES") == [
        '-A KUBE-SERVICES -m comment --comment "default/empty has no endpoints" -m tcp -p tcp -d 10.96.0.11 '
        "--dport 81 -j REJECT --reject-with tcp-reset"]
    assert "--dport 30081 -j REJECT --reject-with tcp-reset" in rules(filter_part, "KUBE-EXTERNAL-SERVICES")[0]
    assert "KUBE-SVC-" not in text and "KUBE-EXT-" not in text


def test_partial_sync_writes_only_changed_chains_and_deletes_stale_ones() -> None:
    other = ServicePort(ServicePortName("default", "other", "http"), "10.96.0.12", 80)
    proxier = IptablesProxier(CommandRunner(), OPTS)
    generate(snapshot((WEB_PORT, ["10.0.0.1", "10.0.0.2"]), (other, ["10.0.1.1"])), proxier=proxier)
    text = generate(snapshot((WEB_PORT, ["10.0.0.1"]), (other, ["10.0.1.1"])), {WEB}, proxier=proxier)
    declared = {line[1:].split()[0] for line in text.splitlines() if line.startswith(":")}
    gone = endpoint_chain(WEB, "tcp", Endpoint("10.0.0.2", 8080))
    assert service_chain(WEB, "tcp") in declared and service_chain(other.name, "tcp") not in declared
    assert f"-X {gone}" in text.splitlines() and "KUBE-SERVICES" in declared
    assert len([r for r in rules(text, "KUBE-SERVICES") if "cluster IP" in r]) == 2, "top level is always whole"
    text = generate(snapshot((other, ["10.0.1.1"])), {WEB}, proxier=proxier)
    assert f"-X {service_chain(WEB, 'tcp')}" in text.splitlines()


def test_full_sync_deletes_leftover_service_chains_and_adds_missing_jumps() -> None:
    proxier = IptablesProxier(CommandRunner(), OPTS)
    text, _, _ = proxier.generate(snapshot((WEB_PORT, ["10.0.0.1"])), None,
                                  {"KUBE-SVC-LEFTOVER", "KUBE-SERVICES", "SOMEONE-ELSES"},
                                  missing_jumps({"nat": "", "filter": ""}))
    lines = text.splitlines()
    assert "-X KUBE-SVC-LEFTOVER" in lines and "-X SOMEONE-ELSES" not in lines
    assert '-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in lines
    saved = {"nat": "\n".join(f"-A {c} -j {t}" for c, t in (("PREROUTING", "KUBE-SERVICES"),
                                                          ("OUTPUT", "KUBE-SERVICES"),
                                                          ("POSTROUTING", "KUBE-POSTROUTING")))}
    assert {(t, c) for t, c, _ in missing_jumps(saved)} == {("filter", "INPUT"), ("filter", "FORWARD"),
                                                            ("filter", "OUTPUT")}
