"""The informers keep the index current: a Service's records follow the
Service and its EndpointSlices event by event (readiness, a slice moving
to another Service, deletion), pods' records follow pods, and the zone's
own records are there from the start. Runs on the in-memory clientset."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import dns.name
import dns.rdatatype
import pytest

from api import FakeClock
from client import Clientset
from clusterdns import ClusterDNS
from proto import core_pb2, discovery_pb2
from tests.support.fakeclient import FakeClientset

from ._objects import endpoint, endpoint_slice, pod, service

ZONE = dns.name.from_text("cluster.local.")


async def settle(rounds: int = 30) -> None:
    """Let the informers deliver: run the loop until it stays idle (the
    in-memory clientset does no real I/O, so idle means done)."""
    loop = asyncio.get_running_loop()
    quiet = 0
    while quiet < rounds:
        before = len(loop._ready)  # type: ignore[attr-defined]
        await asyncio.sleep(0)
        quiet = quiet + 1 if before == 0 else 0


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[FakeClientset, ClusterDNS]]:
    cs = FakeClientset(clock=FakeClock())
    app = ClusterDNS(cast(Clientset, cs), ZONE)
    app.start()
    assert await app.wait_for_sync(5)
    yield cs, app
    await app.shutdown()


def records(app: ClusterDNS, name: str, rdtype: str = "A") -> list[str] | None:
    node = app.index.lookup(dns.name.from_text(name))
    if node is None:
        return None
    return sorted(str(r) for r in node.get(dns.rdatatype.from_text(rdtype), {}))


def slices(cs: FakeClientset) -> Any:
    return cs.resource(discovery_pb2.EndpointSlice, "default")


async def test_the_zone_records_exist_before_any_object(cluster: tuple[FakeClientset, ClusterDNS]) -> None:
    _, app = cluster
    assert records(app, "dns-version.cluster.local.", "TXT") == ['"1.1.0"']
    assert records(app, "cluster.local.", "NS") == ["ns.dns.cluster.local."]


async def test_a_cluster_ip_service_follows_its_object(cluster: tuple[FakeClientset, ClusterDNS]) -> None:
    cs, app = cluster
    services = cs.resource(core_pb2.Service, "default")
    await services.create(service("web", clusterIP="10.96.0.20", clusterIPs=["10.96.0.20"]))
    await settle()
    assert records(app, "web.default.svc.cluster.local.") == ["10.96.0.20"]
    svc = await services.get("web")
    svc.spec.ports.add(name="http", protocol="TCP", port=80)
    await services.update(svc)
    await settle()
    assert records(app, "_http._tcp.web.default.svc.cluster.local.", "SRV") == [
        "0 100 80 web.default.svc.cluster.local."]
    await services.delete("web")
    await settle()
    assert records(app, "web.default.svc.cluster.local.") is None
    assert records(app, "20.0.96.10.in-addr.arpa.", "PTR") is None


async def test_a_headless_service_follows_endpoint_readiness(cluster: tuple[FakeClientset, ClusterDNS]) -> None:
    cs, app = cluster
    await cs.resource(core_pb2.Service, "default").create(service("nginx", clusterIP="None"))
    await slices(cs).create(endpoint_slice("nginx", [endpoint("10.244.1.10", ready=False, hostname="web-0")],
                                           name="nginx-1"))
    await settle()
    assert records(app, "nginx.default.svc.cluster.local.") is None  # no ready endpoint: NXDOMAIN
    es = await slices(cs).get("nginx-1")
    es.endpoints[0].conditions.ready = True
    await slices(cs).update(es)
    await settle()
    assert records(app, "nginx.default.svc.cluster.local.") == ["10.244.1.10"]
    assert records(app, "web-0.nginx.default.svc.cluster.local.") == ["10.244.1.10"]
    await slices(cs).create(endpoint_slice("nginx", [endpoint("10.244.2.11", hostname="web-1")], name="nginx-2"))
    await settle()
    assert records(app, "nginx.default.svc.cluster.local.") == ["10.244.1.10", "10.244.2.11"]
    await slices(cs).delete("nginx-1")
    await settle()
    assert records(app, "nginx.default.svc.cluster.local.") == ["10.244.2.11"]
    assert records(app, "web-0.nginx.default.svc.cluster.local.") is None


async def test_a_slice_relabelled_to_another_service_moves(cluster: tuple[FakeClientset, ClusterDNS]) -> None:
    cs, app = cluster
    for name in ("a", "b"):
        await cs.resource(core_pb2.Service, "default").create(service(name, clusterIP="None"))
    await slices(cs).create(endpoint_slice("a", [endpoint("10.244.0.5")], name="s"))
    await settle()
    assert records(app, "a.default.svc.cluster.local.") == ["10.244.0.5"]
    es = await slices(cs).get("s")
    es.metadata.labels["kubernetes.io/service-name"] = "b"
    await slices(cs).update(es)
    await settle()
    assert records(app, "a.default.svc.cluster.local.") is None
    assert records(app, "b.default.svc.cluster.local.") == ["10.244.0.5"]


async def test_pod_records_follow_pods(cluster: tuple[FakeClientset, ClusterDNS]) -> None:
    cs, app = cluster
    pods = cs.resource(core_pb2.Pod, "default")
    await pods.create(pod("a", "10.244.1.5"))
    await settle()
    assert records(app, "10-244-1-5.default.pod.cluster.local.") == ["10.244.1.5"]
    assert records(app, "10-244-1-5.other.pod.cluster.local.") is None  # verified: only its own namespace
    done = await pods.get("a")
    done.status.phase = "Succeeded"
    await pods.update_status(done)
    await settle()
    assert records(app, "10-244-1-5.default.pod.cluster.local.") is None


async def test_without_pod_records_no_pod_watch() -> None:
    cs = FakeClientset(clock=FakeClock())
    app = ClusterDNS(cast(Clientset, cs), ZONE, pod_records=False)
    app.start()
    try:
        assert await app.wait_for_sync(5)
        await cs.resource(core_pb2.Pod, "default").create(pod("a", "10.244.1.5"))
        await settle()
        assert records(app, "10-244-1-5.default.pod.cluster.local.") is None
        assert cs.count("watch", "pods") == 0
    finally:
        await app.shutdown()
