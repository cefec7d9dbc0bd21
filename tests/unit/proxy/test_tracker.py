"""The change tracker: which Services become service ports (not headless,
not ExternalName), how slices merge into endpoints, Kubernetes' fallback
to serving-terminating endpoints, and which names a change marks."""

from __future__ import annotations

from api import FakeClock
from proxy import ChangeTracker, Endpoint, ServicePortName
from proxy._tracker import service_ports
from proxy._types import usable_endpoints

from ._fixtures import WEB, endpoint_slice, service


def test_a_cluster_ip_service_has_one_service_port_per_port() -> None:
    ports = service(ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                           {"name": "dns", "port": 53, "protocol": "UDP"}])
    got = service_ports(ports)
    assert set(got) == {WEB, ServicePortName("default", "web", "dns", "UDP")}
    assert got[WEB].cluster_ip == "10.96.0.10" and got[WEB].port == 80 and got[WEB].node_port == 0
    assert str(WEB) == "default/web:http"
    assert str(ServicePortName("default", "web", "")) == "default/web"


def test_headless_and_external_name_services_have_no_rules() -> None:
    assert service_ports(service(ip="None")) == {}
    assert service_ports(service(ip="", type_="ExternalName", externalName="db.example.org")) == {}


def test_node_port_and_session_affinity() -> None:
    svc = service(type_="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}],
                  sessionAffinity="ClientIP")
    sp = service_ports(svc)[WEB]
    assert sp.node_port == 30080 and sp.affinity_seconds == 10800
    svc.spec.sessionAffinityConfig.clientIP.timeoutSeconds = 60
    assert service_ports(svc)[WEB].affinity_seconds == 60
    svc.spec.type = "ClusterIP"  # a nodePort left on a ClusterIP service is not programmed
    assert service_ports(svc)[WEB].node_port == 0


def test_slices_merge_and_changes_are_marked() -> None:
    tracker = ChangeTracker(FakeClock())
    tracker.service_changed("default/web", service())
    tracker.slice_changed("default", "web-a", endpoint_slice("web-a", endpoints=[("10.0.0.2", True)]))
    tracker.slice_changed("default", "web-b", endpoint_slice("web-b", endpoints=[("10.0.0.1", True)]))
    snap, changed, triggers = tracker.snapshot()
    assert changed == {WEB} and len(triggers) == 2
    assert [e.ip for e in snap.targets(WEB)] == ["10.0.0.1", "10.0.0.2"]
    assert not tracker.pending()
    tracker.slice_changed("default", "web-b", endpoint_slice("web-b", endpoints=[("10.0.0.1", True)]))
    assert not tracker.pending(), "an identical slice update changes nothing"
    tracker.slice_changed("default", "web-a", None)
    snap, changed, _ = tracker.snapshot()
    assert changed == {WEB} and [e.ip for e in snap.targets(WEB)] == ["10.0.0.1"]
    tracker.service_changed("default/web", None)
    snap, changed, _ = tracker.snapshot()
    assert changed == {WEB} and WEB not in snap.services


def test_only_ready_endpoints_take_traffic_with_terminating_fallback() -> None:
    tracker = ChangeTracker(FakeClock())
    tracker.slice_changed("default", "web-a", endpoint_slice(
        "web-a", endpoints=[("10.0.0.1", True), ("10.0.0.2", False)]))
    snap, _, _ = tracker.snapshot()
    assert [e.ip for e in snap.targets(WEB)] == ["10.0.0.1"]
    both_terminating = (Endpoint("10.0.0.1", 80, ready=False, serving=True, terminating=True),
                        Endpoint("10.0.0.2", 80, ready=False, serving=False, terminating=True))
    assert [e.ip for e in usable_endpoints(both_terminating)] == ["10.0.0.1"]
    assert usable_endpoints((Endpoint("10.0.0.3", 80, ready=False, serving=False),)) == ()


def test_slices_of_other_kinds_are_skipped() -> None:
    tracker = ChangeTracker(FakeClock())
    tracker.slice_changed("default", "v6", endpoint_slice("v6", endpoints=[("fd00::1", True)], address_type="IPv6"))
    orphan = endpoint_slice("orphan", endpoints=[("10.0.0.1", True)])
    del orphan.metadata.labels["kubernetes.io/service-name"]
    tracker.slice_changed("default", "orphan", orphan)
    assert tracker.snapshot()[0].endpoints == {}


def test_trigger_time_annotation_and_requeue() -> None:
    clock = FakeClock()
    tracker = ChangeTracker(clock)
    es = endpoint_slice("web-a", endpoints=[("10.0.0.1", True)])
    es.metadata.annotations["endpoints.kubernetes.io/last-change-trigger-time"] = "2023-11-14T22:13:00Z"
    tracker.slice_changed("default", "web-a", es)
    tracker.slice_changed("default", "web-b", endpoint_slice("web-b", endpoints=[("10.0.0.2", True)]))
    _, changed, triggers = tracker.snapshot()
    assert triggers == [1699999980.0, clock.now()]
    tracker.requeue(changed, triggers)
    assert tracker.pending() and tracker.snapshot()[1] == {WEB}
