"""IPVS mode as data: virtual servers per service IP/port and node port
with ready endpoints as real servers, persistence for ClientIP affinity,
kube-ipvs0 addresses, the ipsets and masquerade rules, and the clear
refusal on a kernel without ip_vs."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy import IpvsProxier, IPVSUnavailable, Options, ServicePort, ServicePortName, check_available
from proxy._ipvs import RealServer, desired_state, ipset_restore_input, masquerade_rules
from proxy._runner import CommandRunner

from ._fixtures import WEB, snapshot


def test_virtual_servers_per_service_address() -> None:
    sp = ServicePort(WEB, "10.96.0.10", 80, node_port=30080, affinity_seconds=600)
    empty = ServicePort(ServicePortName("default", "empty", ""), "10.96.0.11", 53, protocol="UDP")
    state = desired_state(snapshot((sp, ["10.0.0.2", "10.0.0.1"]), (empty, [])), "rr", ("192.0.2.1",))
    assert set(state.virtual_servers) == {("10.96.0.10", 80, "tcp"), ("192.0.2.1", 30080, "tcp")}
    vs = state.virtual_servers[("10.96.0.10", 80, "tcp")]
    assert vs.scheduler == "rr" and vs.persistent_seconds == 600
    assert vs.real_servers == (RealServer("10.0.0.1", 8080), RealServer("10.0.0.2", 8080))
    assert state.bound_addresses == {"10.96.0.10", "10.96.0.11"}, "an IP without endpoints stays bound: RST at once"
    assert state.ipsets["KUBE-CLUSTER-IP"] == {"10.96.0.10,tcp:80", "10.96.0.11,udp:53"}
    assert state.ipsets["KUBE-LOOP-BACK"] == {"10.0.0.1,tcp:8080,10.0.0.1", "10.0.0.2,tcp:8080,10.0.0.2"}
    assert state.ipsets["KUBE-NODE-PORT-TCP"] == {"30080"}


def test_scheduler_flag_and_masquerade_rules() -> None:
    sp = ServicePort(WEB, "10.96.0.10", 80)
    assert desired_state(snapshot((sp, ["10.0.0.1"])), "lc", ()).virtual_servers[
        ("10.96.0.10", 80, "tcp")].scheduler == "lc"
    with pytest.raises(ValueError, match="unknown scheduler 'fast'"):
        IpvsProxier(CommandRunner(), Options(), "fast")
    rules = masquerade_rules(Options(cluster_cidr="10.244.0.0/16"))
    assert "-m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ" in rules
    assert "-m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE" in rules
    text = ipset_restore_input({"KUBE-CLUSTER-IP": {"10.96.0.10,tcp:80"}})
    assert text.splitlines() == ["create KUBE-CLUSTER-IP hash:ip,port", "create KUBE-CLUSTER-IP-TMP hash:ip,port",
                                 "flush KUBE-CLUSTER-IP-TMP", "add KUBE-CLUSTER-IP-TMP 10.96.0.10,tcp:80",
                                 "swap KUBE-CLUSTER-IP-TMP KUBE-CLUSTER-IP", "destroy KUBE-CLUSTER-IP-TMP"]


def test_refuses_without_ip_vs(tmp_path: Path) -> None:
    with pytest.raises(IPVSUnavailable, match="ipvs proxy mode needs the ip_vs kernel module, which this kernel "
                                              "does not have"):
        check_available(str(tmp_path / "ip_vs"))
    (tmp_path / "ip_vs").write_text("")
    check_available(str(tmp_path / "ip_vs"))
