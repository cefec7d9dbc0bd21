"""controller_manager/endpoints.py on the in-memory clientset: ready and
not-ready addresses, publishNotReadyAddresses, named targetPorts resolved
per pod, terminating and finished pods left out, subsets grouped by port
set, selector-less Services left alone, Endpoints removed with their
Service (also when it went while the controller was down), no write when
nothing changed, and truncation past 1000 addresses."""

from __future__ import annotations

from api import int_or_string
from controller_manager.endpoints import (
    MAX_CAPACITY,
    OVER_CAPACITY,
    EndpointsController,
    desired_subsets,
    find_port,
    truncate,
)
from proto import core_pb2

from ._cluster import Harness, meta, running_pod, set_ready, settle

Service = core_pb2.Service
Endpoints = core_pb2.Endpoints


def service(name: str = "web", *, selector: dict[str, str] | None = None, target: int | str = 8080,
            publish: bool = False, namespace: str = "ns") -> Service:
    svc = meta(Service(), name, namespace)
    svc.spec.selector.update({"app": "web"} if selector is None else selector)
    svc.spec.ports.add(name="http", port=80, protocol="TCP", targetPort=int_or_string(target))
    svc.spec.clusterIP = "10.96.0.10"
    svc.spec.publishNotReadyAddresses = publish
    return svc


def addresses(ep: Endpoints | None) -> tuple[list[str], list[str]]:
    assert ep is not None
    ready = sorted(a.ip for s in ep.subsets for a in s.addresses)
    not_ready = sorted(a.ip for s in ep.subsets for a in s.notReadyAddresses)
    return ready, not_ready


async def test_ready_pods_are_addresses_and_others_not_ready_addresses() -> None:
    async with Harness(EndpointsController) as h:
        await h.create(service())
        await h.create(running_pod("a", ip="10.0.0.1", labels={"app": "web"}))
        await h.create(running_pod("b", ip="10.0.0.2", labels={"app": "web"}, ready=False))
        await h.create(running_pod("other", ip="10.0.0.3", labels={"app": "db"}))
        await h.create(running_pod("no-ip", labels={"app": "web"}))
        ep = h.get(Endpoints, "ns", "web")
        assert addresses(ep) == (["10.0.0.1"], ["10.0.0.2"])
        assert ep is not None and [(p.name, p.port, p.protocol) for p in ep.subsets[0].ports] == [("http", 8080, "TCP")]
        ref = ep.subsets[0].addresses[0].targetRef
        assert (ref.kind, ref.name) == ("Pod", "a") and ep.subsets[0].addresses[0].nodeName == "node-1"

        # Readiness flips move the address; a finished pod leaves.
        pods = h.client(core_pb2.Pod, "ns")
        b = await pods.get("b")
        set_ready(b, True)
        await pods.update_status(b)
        a = await pods.get("a")
        a.status.phase = "Succeeded"
        await pods.update_status(a)
        await settle()
        assert addresses(h.get(Endpoints, "ns", "web")) == (["10.0.0.2"], [])


async def test_publish_not_ready_addresses_lists_every_pod_as_ready() -> None:
    async with Harness(EndpointsController) as h:
        await h.create(service(publish=True))
        await h.create(running_pod("a", ip="10.0.0.1", labels={"app": "web"}, ready=False))
        assert addresses(h.get(Endpoints, "ns", "web")) == (["10.0.0.1"], [])


async def test_terminating_pods_are_left_out() -> None:
    async with Harness(EndpointsController) as h:
        await h.create(service())
        await h.create(running_pod("a", ip="10.0.0.1", labels={"app": "web"}))
        pod = running_pod("b", ip="10.0.0.2", labels={"app": "web"})
        pod.metadata.finalizers.append("example.com/hold")
        await h.create(pod)
        await h.client(core_pb2.Pod, "ns").delete("b")
        await settle()
        assert addresses(h.get(Endpoints, "ns", "web")) == (["10.0.0.1"], [])


async def test_named_target_port_is_resolved_per_pod() -> None:
    async with Harness(EndpointsController) as h:
        await h.create(service(target="http"))
        await h.create(running_pod("a", ip="10.0.0.1", labels={"app": "web"}, ports={"http": 8080}))
        await h.create(running_pod("b", ip="10.0.0.2", labels={"app": "web"}, ports={"http": 9090}))
        await h.create(running_pod("c", ip="10.0.0.3", labels={"app": "web"}, ports={"metrics": 9100}))
        ep = h.get(Endpoints, "ns", "web")
        assert ep is not None
        by_port = {s.ports[0].port: [a.ip for a in s.addresses] for s in ep.subsets}
        assert by_port == {8080: ["10.0.0.1"], 9090: ["10.0.0.2"]}  # c serves no "http": left out


async def test_service_without_selector_keeps_hand_made_endpoints() -> None:
    async with Harness(EndpointsController) as h:
        await h.create(service("external", selector={}))
        manual = meta(Endpoints(), "external", "ns")
        manual.subsets.add(addresses=[core_pb2.EndpointAddress(ip="192.0.2.10")],
                           ports=[core_pb2.EndpointPort(port=5432, protocol="TCP")])
        await h.create(manual)
        await h.create(running_pod("a", ip="10.0.0.1", labels={"app": "web"}))
        ep = h.get(Endpoints, "ns", "external")
        assert ep is not None and [a.ip for a in ep.subsets[0].addresses] == ["192.0.2.10"]
        assert h.cs.count("update", "endpoints") == 0


async def test_endpoints_go_with_their_service_and_leftovers_are_removed_at_start() -> None:
    h = Harness(EndpointsController)
    leftover = meta(Endpoints(), "gone", "ns")
    await h.cs.resource(Endpoints, "ns").create(leftover)
    async with h:
        assert h.get(Endpoints, "ns", "gone") is None  # its Service was deleted while nobody watched
        await h.create(service())
        assert h.get(Endpoints, "ns", "web") is not None
        await h.client(Service, "ns").delete("web")
        await settle()
        assert h.get(Endpoints, "ns", "web") is None


async def test_nothing_is_written_when_nothing_changed() -> None:
    async with Harness(EndpointsController) as h:
        await h.create(service())
        await h.create(running_pod("a", ip="10.0.0.1", labels={"app": "web"}))
        writes = h.cs.count("update", "endpoints") + h.cs.count("create", "endpoints")
        pods = h.client(core_pb2.Pod, "ns")
        pod = await pods.get("a")
        pod.metadata.annotations["touched"] = "yes"  # an irrelevant change re-syncs the Service
        await pods.update(pod)
        await settle()
        assert h.cs.count("update", "endpoints") + h.cs.count("create", "endpoints") == writes


def test_subsets_group_addresses_by_port_set_in_a_stable_order() -> None:
    svc = service(target="http")
    pods = [running_pod(n, ip=ip, labels={"app": "web"}, ports={"http": port})
            for n, ip, port in (("z", "10.0.0.9", 8080), ("a", "10.0.0.1", 8080), ("m", "10.0.0.5", 9090))]
    first = desired_subsets(svc, pods)
    assert desired_subsets(svc, list(reversed(pods))) == first
    assert [[a.ip for a in s.addresses] for s in first] == [["10.0.0.1", "10.0.0.9"], ["10.0.0.5"]]


def test_headless_service_without_ports_lists_addresses_alone() -> None:
    svc = service()
    del svc.spec.ports[:]
    svc.spec.clusterIP = "None"
    subsets = desired_subsets(svc, [running_pod("a", ip="10.0.0.1", labels={"app": "web"})])
    assert [a.ip for a in subsets[0].addresses] == ["10.0.0.1"] and not subsets[0].ports


def test_find_port() -> None:
    pod = running_pod("a", ports={"http": 8080})
    port = core_pb2.ServicePort(port=80, protocol="TCP", targetPort=int_or_string("http"))
    assert find_port(pod, port) == 8080
    assert find_port(pod, core_pb2.ServicePort(port=80, protocol="UDP", targetPort=int_or_string("http"))) is None
    assert find_port(pod, core_pb2.ServicePort(port=80, targetPort=int_or_string(9000))) == 9000
    assert find_port(pod, core_pb2.ServicePort(port=80)) == 80


def test_truncate_keeps_capacity_addresses_ready_first() -> None:
    subsets = [core_pb2.EndpointSubset(
        addresses=[core_pb2.EndpointAddress(ip=f"10.0.{i // 250}.{i % 250}") for i in range(900)],
        notReadyAddresses=[core_pb2.EndpointAddress(ip=f"10.1.{i // 250}.{i % 250}") for i in range(300)])]
    assert truncate(subsets)
    assert len(subsets[0].addresses) == 900 and len(subsets[0].notReadyAddresses) == MAX_CAPACITY - 900
    assert not truncate(subsets)


async def test_over_capacity_is_annotated() -> None:
    async with Harness(EndpointsController) as h:
        await h.create(service())
        for i in range(MAX_CAPACITY + 5):
            await h.client(core_pb2.Pod, "ns").create(
                running_pod(f"p{i}", ip=f"10.1.{i // 250}.{i % 250 + 1}", labels={"app": "web"}))
        await settle()
        ep = h.get(Endpoints, "ns", "web")
        assert ep is not None and ep.metadata.annotations[OVER_CAPACITY] == "truncated"
        assert sum(len(s.addresses) for s in ep.subsets) == MAX_CAPACITY
