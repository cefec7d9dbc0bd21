"""The objects-to-records rules of the Kubernetes DNS specification: ClusterIP,
headless (readiness, hostnames, SRV per named port, PTR), ExternalName and
pod records, on hand-built objects and on the documentation's manifests
(the StatefulSet example's headless Service, the Service examples)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dns.name
import pytest

from clusterdns import pod_records, service_records

from ._objects import endpoint, endpoint_slice, manifest, pod, service, stored

ZONE = dns.name.from_text("cluster.local.")

# The StatefulSet example's endpoints as the endpoint-slice controller
# writes them: web-0 and web-1 ready, web-2 still starting.
WEB_SLICE = endpoint_slice("nginx", [
    endpoint("10.244.1.10", hostname="web-0", pod="web-0"),
    endpoint("10.244.2.11", hostname="web-1", pod="web-1"),
    endpoint("10.244.1.12", ready=False, hostname="web-2", pod="web-2"),
], ports=[{"name": "web", "protocol": "TCP", "port": 80}])


def texts(records: list[Any]) -> list[str]:
    return sorted(str(r) for r in records)


CASES: list[tuple[str, Any, list[Any], list[str]]] = [
    ("cluster IP: A, PTR, SRV per named port only",
     service("web", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"],
             ports=[{"name": "http", "protocol": "TCP", "port": 80}, {"name": "dns", "protocol": "UDP", "port": 53},
                    {"protocol": "TCP", "port": 8080}]),
     [],
     ["20.0.96.10.in-addr.arpa. PTR web.default.svc.cluster.local.",
      "_dns._udp.web.default.svc.cluster.local. SRV 0 100 53 web.default.svc.cluster.local.",
      "_http._tcp.web.default.svc.cluster.local. SRV 0 100 80 web.default.svc.cluster.local.",
      "web.default.svc.cluster.local. A 10.96.0.20"]),
    ("cluster IP: endpoints do not matter",
     service("web", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"]),
     [endpoint_slice("web", [endpoint("10.244.0.5", hostname="x")])],
     ["20.0.96.10.in-addr.arpa. PTR web.default.svc.cluster.local.",
      "web.default.svc.cluster.local. A 10.96.0.20"]),
    ("dual stack: A and AAAA, a PTR for each",
     service("dual", "prod", clusterIP="10.96.0.21", clusterIPs=["10.96.0.21", "fd00:10:96::15"]),
     [],
     ["21.0.96.10.in-addr.arpa. PTR dual.prod.svc.cluster.local.",
      "5.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. PTR dual.prod.svc.cluster.local.",
      "dual.prod.svc.cluster.local. A 10.96.0.21",
      "dual.prod.svc.cluster.local. AAAA fd00:10:96::15"]),
    ("no cluster IP yet: nothing",
     service("new", ports=[{"name": "http", "port": 80}]), [], []),
    ("headless: ready endpoints only, dashed names when no hostname, SRV per endpoint on the slice's port",
     service("db", clusterIP="None", ports=[{"name": "pg", "port": 5432, "targetPort": 15432}]),
     [endpoint_slice("db", [endpoint("10.244.0.7"), endpoint("10.244.0.8", ready=False),
                            endpoint("10.244.0.9", ready=None)],
                     ports=[{"name": "pg", "protocol": "TCP", "port": 15432}])],
     ["10-244-0-7.db.default.svc.cluster.local. A 10.244.0.7",
      "10-244-0-9.db.default.svc.cluster.local. A 10.244.0.9",
      "7.0.244.10.in-addr.arpa. PTR 10-244-0-7.db.default.svc.cluster.local.",
      "9.0.244.10.in-addr.arpa. PTR 10-244-0-9.db.default.svc.cluster.local.",
      "_pg._tcp.db.default.svc.cluster.local. SRV 0 100 15432 10-244-0-7.db.default.svc.cluster.local.",
      "_pg._tcp.db.default.svc.cluster.local. SRV 0 100 15432 10-244-0-9.db.default.svc.cluster.local.",
      "db.default.svc.cluster.local. A 10.244.0.7",
      "db.default.svc.cluster.local. A 10.244.0.9"]),
    ("headless without ready endpoints: nothing (NXDOMAIN)",
     service("db", clusterIP="None"),
     [endpoint_slice("db", [endpoint("10.244.0.8", ready=False)])], []),
    ("headless with publishNotReadyAddresses: every endpoint",
     service("db", clusterIP="None", publishNotReadyAddresses=True),
     [endpoint_slice("db", [endpoint("10.244.0.8", ready=False, hostname="db-0")])],
     ["8.0.244.10.in-addr.arpa. PTR db-0.db.default.svc.cluster.local.",
      "db-0.db.default.svc.cluster.local. A 10.244.0.8",
      "db.default.svc.cluster.local. A 10.244.0.8"]),
    ("headless IPv6 slice: AAAA; an FQDN slice names nothing",
     service("v6", clusterIP="None"),
     [endpoint_slice("v6", [endpoint("fd00::7")], address_type="IPv6", name="v6-a"),
      endpoint_slice("v6", [endpoint("example.com")], address_type="FQDN", name="v6-b")],
     ["7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. "
      "PTR fd00--7.v6.default.svc.cluster.local.",
      "fd00--7.v6.default.svc.cluster.local. AAAA fd00::7",
      "v6.default.svc.cluster.local. AAAA fd00::7"]),
    ("ExternalName: a CNAME",
     service("db", type="ExternalName", externalName="my.database.example.com"),
     [], ["db.default.svc.cluster.local. CNAME my.database.example.com."]),
]


@pytest.mark.parametrize(("svc", "slices", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_service_records(svc: Any, slices: list[Any], want: list[str]) -> None:
    assert texts(service_records(svc, slices, ZONE)) == want


def test_statefulset_example_gets_per_pod_names_for_ready_pods(manifests_dir: Path) -> None:
    svc = stored(manifest(manifests_dir / "controllers" / "statefulset.yaml", "Service"))
    assert svc.spec.clusterIP == "None"
    got = texts(service_records(svc, [WEB_SLICE], ZONE))
    assert got == [
        "10.1.244.10.in-addr.arpa. PTR web-0.nginx.default.svc.cluster.local.",
        "11.2.244.10.in-addr.arpa. PTR web-1.nginx.default.svc.cluster.local.",
        "_web._tcp.nginx.default.svc.cluster.local. SRV 0 100 80 web-0.nginx.default.svc.cluster.local.",
        "_web._tcp.nginx.default.svc.cluster.local. SRV 0 100 80 web-1.nginx.default.svc.cluster.local.",
        "nginx.default.svc.cluster.local. A 10.244.1.10",
        "nginx.default.svc.cluster.local. A 10.244.2.11",
        "web-0.nginx.default.svc.cluster.local. A 10.244.1.10",
        "web-1.nginx.default.svc.cluster.local. A 10.244.2.11",
    ]


@pytest.mark.parametrize(("path", "name"), [
    ("service/networking/nginx-svc.yaml", "my-nginx"),
    ("service/networking/dual-stack-default-svc.yaml", "my-service"),
    ("application/nginx-app.yaml", "my-nginx-svc"),
])
def test_documentation_services_with_unnamed_ports_get_a_and_ptr_only(manifests_dir: Path, path: str,
                                                                      name: str) -> None:
    svc = stored(manifest(manifests_dir / path, "Service"), namespace="demo", cluster_ip="10.96.3.4")
    assert texts(service_records(svc, [], ZONE)) == [
        f"4.3.96.10.in-addr.arpa. PTR {name}.demo.svc.cluster.local.",
        f"{name}.demo.svc.cluster.local. A 10.96.3.4",
    ]


def test_another_cluster_domain() -> None:
    svc = service("web", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"])
    assert "web.default.svc.lab.example. A 10.96.0.20" in texts(
        service_records(svc, [], dns.name.from_text("lab.example.")))


def test_tolerate_unready_annotation_counts_as_publishing() -> None:
    svc = service("db", clusterIP="None")
    svc.metadata.annotations["service.alpha.kubernetes.io/tolerate-unready-endpoints"] = "true"
    got = texts(service_records(svc, [endpoint_slice("db", [endpoint("10.244.0.8", ready=False)])], ZONE))
    assert "db.default.svc.cluster.local. A 10.244.0.8" in got


def test_bad_data_is_skipped_with_a_warning_naming_object_and_field(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    svc = service("db", clusterIP="None")
    es = endpoint_slice("db", [endpoint("10.244.0.300"), endpoint("10.244.0.4")], name="db-xyz")
    assert texts(service_records(svc, [es], ZONE))[-1] == "db.default.svc.cluster.local. A 10.244.0.4"
    assert 'EndpointSlice "default/db-xyz": endpoints[0].addresses[0]: \'10.244.0.300\' is not an IPv4 address' \
        in caplog.text
    bad = service("ext", type="ExternalName", externalName="a..b")
    assert service_records(bad, [], ZONE) == []
    assert 'Service "default/ext": spec.externalName: \'a..b\' is not a domain name' in caplog.text


@pytest.mark.parametrize(("obj", "want"), [
    (pod("a", "10.244.1.5"), ["10-244-1-5.default.pod.cluster.local. A 10.244.1.5"]),
    (pod("b", "fd00::5", "prod"), ["fd00--5.prod.pod.cluster.local. AAAA fd00::5"]),
    (pod("c", ""), []),
    (pod("d", "10.244.1.6", phase="Succeeded"), []),
])
def test_pod_records(obj: Any, want: list[str]) -> None:
    assert texts(pod_records(obj, ZONE)) == want
