"""kubelet/_dnsconfig.py: the sandbox DNSConfig per dnsPolicy (ClusterFirst,
ClusterFirstWithHostNet, Default, None, hostNetwork fallback, no cluster
DNS, --resolv-conf=""), the merge of the pod's dnsConfig, Kubernetes'
limits with their DNSConfigForming warnings, resolv.conf parsing and
the resolv.conf text a runtime writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api import from_dict
from kubelet._dnsconfig import DNSConfigError, format_resolv_conf, parse_resolv_conf, sandbox_dns_config
from proto import core_pb2

HOST_RESOLV = """# host resolver
; also a comment
nameserver 192.168.1.1
nameserver 192.168.1.2
search old.example
search corp.example. lab.example .
options rotate timeout:2
"""
CLUSTER_SEARCH = ["ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"]


def pod(**spec: Any) -> core_pb2.Pod:
    return from_dict(core_pb2.Pod, {"metadata": {"name": "p", "namespace": "ns1", "uid": "u1"},
                                    "spec": {"containers": [{"name": "c"}], **spec}})


@pytest.fixture
def host_resolv(tmp_path: Path) -> Path:
    path = tmp_path / "resolv.conf"
    path.write_text(HOST_RESOLV)
    return path


@pytest.mark.parametrize(("spec", "servers", "searches", "options"), [
    ({}, ["10.96.0.10"], [*CLUSTER_SEARCH, "corp.example", "lab.example"], ["ndots:5"]),
    ({"dnsPolicy": "ClusterFirst"}, ["10.96.0.10"], [*CLUSTER_SEARCH, "corp.example", "lab.example"], ["ndots:5"]),
    ({"dnsPolicy": "ClusterFirst", "hostNetwork": True}, ["192.168.1.1", "192.168.1.2"],
     ["corp.example", "lab.example"], ["rotate", "timeout:2"]),
    ({"dnsPolicy": "ClusterFirstWithHostNet", "hostNetwork": True}, ["10.96.0.10"],
     [*CLUSTER_SEARCH, "corp.example", "lab.example"], ["ndots:5"]),
    ({"dnsPolicy": "Default"}, ["192.168.1.1", "192.168.1.2"], ["corp.example", "lab.example"],
     ["rotate", "timeout:2"]),
    ({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["a.example"],
                                         "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}},
     ["1.1.1.1"], ["a.example"], ["ndots:2", "edns0"]),
    ({"dnsConfig": {"nameservers": ["10.96.0.10", "1.1.1.1"], "searches": ["cluster.local", "x.example"],
                    "options": [{"name": "ndots", "value": "1"}, {"name": "single-request"}]}},
     ["10.96.0.10", "1.1.1.1"], [*CLUSTER_SEARCH, "corp.example", "lab.example", "x.example"],
     ["ndots:1", "single-request"]),
    ({"dnsPolicy": "Default", "dnsConfig": {"options": [{"name": "rotate"}, {"name": "timeout", "value": "5"}]}},
     ["192.168.1.1", "192.168.1.2"], ["corp.example", "lab.example"], ["rotate", "timeout:5"]),
])
def test_policies(host_resolv: Path, spec: dict[str, Any], servers: list[str], searches: list[str],
                  options: list[str]) -> None:
    config = sandbox_dns_config(pod(**spec), cluster_dns=["10.96.0.10"], cluster_domain="cluster.local",
                                host_resolv_conf=host_resolv)
    assert (list(config.servers), list(config.searches), list(config.options)) == (servers, searches, options)


def test_no_cluster_dns_falls_back_to_default_with_a_warning(host_resolv: Path) -> None:
    warnings: list[tuple[str, str]] = []
    config = sandbox_dns_config(pod(), cluster_dns=[], cluster_domain="cluster.local", host_resolv_conf=host_resolv,
                                on_warning=lambda reason, msg: warnings.append((reason, msg)))
    assert list(config.servers) == ["192.168.1.1", "192.168.1.2"]
    assert list(config.searches) == ["corp.example", "lab.example"]
    assert [reason for reason, _ in warnings] == ["MissingClusterDNS"]
    assert 'Falling back to "Default" policy' in warnings[0][1]


@pytest.mark.parametrize(("spec", "node_ips", "servers", "searches", "options"), [
    # --resolv-conf="": Default means the local nameserver and no search
    ({"dnsPolicy": "Default"}, ["192.168.1.5"], ["127.0.0.1"], ["."], []),
    ({"dnsPolicy": "Default"}, ["fd00::5"], ["::1"], ["."], []),
    ({"dnsPolicy": "Default"}, ["192.168.1.5", "fd00::5"], ["127.0.0.1", "::1"], ["."], []),
    # ... while ClusterFirst gets only the cluster's search path
    ({}, ["192.168.1.5"], ["10.96.0.10"], CLUSTER_SEARCH, ["ndots:5"]),
])
def test_no_host_resolv_conf(spec: dict[str, Any], node_ips: list[str], servers: list[str], searches: list[str],
                             options: list[str]) -> None:
    config = sandbox_dns_config(pod(**spec), cluster_dns=["10.96.0.10"], cluster_domain="cluster.local",
                                host_resolv_conf=None, node_ips=node_ips)
    assert (list(config.servers), list(config.searches), list(config.options)) == (servers, searches, options)


def test_empty_cluster_domain_keeps_host_searches(host_resolv: Path) -> None:
    config = sandbox_dns_config(pod(), cluster_dns=["10.96.0.10"], cluster_domain="", host_resolv_conf=host_resolv)
    assert list(config.searches) == ["corp.example", "lab.example"]


def test_nameserver_limit(host_resolv: Path) -> None:
    warnings: list[tuple[str, str]] = []
    spec = {"dnsConfig": {"nameservers": ["1.1.1.1", "8.8.8.8", "9.9.9.9"]}}
    config = sandbox_dns_config(pod(**spec), cluster_dns=["10.96.0.10"], cluster_domain="cluster.local",
                                host_resolv_conf=host_resolv, on_warning=lambda r, m: warnings.append((r, m)))
    assert list(config.servers) == ["10.96.0.10", "1.1.1.1", "8.8.8.8"]
    assert warnings == [("DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, "
                                             "the applied nameserver line is: 10.96.0.10 1.1.1.1 8.8.8.8")]


@pytest.mark.parametrize(("extra", "kept"), [
    ([f"d{i}.example" for i in range(40)], 32),            # 32 search domains at most
    (["x" * 254 + ".example"], 5),                          # a domain over 253 characters is dropped
    # the line fits in 2048 characters: 78 + 9 * (1 + 199) = 1878 fits, a tenth domain would not
    ([f"{'y' * 190}{i}.example" for i in range(12)], 5 + 9),
])
def test_search_limits(host_resolv: Path, extra: list[str], kept: int) -> None:
    warnings: list[tuple[str, str]] = []
    config = sandbox_dns_config(pod(dnsConfig={"searches": extra}), cluster_dns=["10.96.0.10"],
                                cluster_domain="cluster.local", host_resolv_conf=host_resolv,
                                on_warning=lambda r, m: warnings.append((r, m)))
    assert len(config.searches) == kept
    assert len(" ".join(config.searches)) <= 2048
    assert all(len(s) <= 253 for s in config.searches)
    assert [r for r, _ in warnings] == ["DNSConfigForming"]
    assert warnings[0][1].endswith(" ".join(config.searches))


def test_parse_resolv_conf() -> None:
    assert parse_resolv_conf(HOST_RESOLV) == (["192.168.1.1", "192.168.1.2"], ["corp.example", "lab.example"],
                                              ["rotate", "timeout:2"])
    with pytest.raises(DNSConfigError, match="nameserver list is empty"):
        parse_resolv_conf("nameserver\n")


def test_unreadable_host_resolv_conf(tmp_path: Path) -> None:
    with pytest.raises(DNSConfigError, match="could not open resolv conf file"):
        sandbox_dns_config(pod(), cluster_dns=["10.96.0.10"], cluster_domain="cluster.local",
                           host_resolv_conf=tmp_path / "missing")


def test_format_resolv_conf(host_resolv: Path) -> None:
    config = sandbox_dns_config(pod(), cluster_dns=["10.96.0.10"], cluster_domain="cluster.local",
                                host_resolv_conf=host_resolv)
    assert format_resolv_conf(config) == ("search ns1.svc.cluster.local svc.cluster.local cluster.local corp.example "
                                          "lab.example\nnameserver 10.96.0.10\noptions ndots:5\n")
