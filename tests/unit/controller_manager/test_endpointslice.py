"""controller_manager/endpointslice.py on the in-memory clientset: at most
100 endpoints per slice, labels and owner, endpoint conditions (ready,
serving, terminating, publishNotReadyAddresses), one slice rewritten when
one pod changes, separate slices per resolved port set, the empty
placeholder, slices deleted with their Service, selector-less Services
left alone, and no duplicate slices while the slice cache lags."""

from __future__ import annotations

from api import int_or_string
from controller_manager.endpointslice import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    EndpointSliceController,
)
from proto import core_pb2, discovery_pb2

from ._cluster import Harness, meta, running_pod, set_ready, settle

Service = core_pb2.Service
Slice = discovery_pb2.EndpointSlice


def service(name: str = "web", *, target: int | str = 8080, publish: bool = False,
            selector: dict[str, str] | None = None) -> Service:
    svc = meta(Service(), name, "ns", tier="front")
    svc.spec.selector.update({"app": "web"} if selector is None else selector)
    svc.spec.ports.add(name="http", port=80, protocol="TCP", targetPort=int_or_string(target))
    svc.spec.clusterIP = "10.96.0.10"
    svc.spec.ipFamilies.append("IPv4")
    svc.spec.publishNotReadyAddresses = publish
    return svc


def slices(h: Harness, name: str = "web") -> list[Slice]:
    return [s for s in h.cs.objects(Slice, "ns") if s.metadata.labels.get(SERVICE_NAME_LABEL) == name]


def endpoints(h: Harness, name: str = "web") -> dict[str, discovery_pb2.Endpoint]:
    return {e.addresses[0]: e for s in slices(h, name) for e in s.endpoints}


async def add_pods(h: Harness, count: int, start: int = 0, **kw: object) -> None:
    pods = h.client(core_pb2.Pod, "ns")
    for i in range(start, start + count):
        await pods.create(running_pod(f"p{i}", ip=f"10.0.{i // 200}.{i % 200 + 1}", labels={"app": "web"},
                                      **kw))  # type: ignore[arg-type]
    await settle()


async def test_slices_hold_at_most_100_endpoints_and_name_their_service() -> None:
    async with Harness(EndpointSliceController) as h:
        svc = await h.create(service())
        await add_pods(h, 250)
        got = slices(h)
        assert sorted(len(s.endpoints) for s in got) == [50, 100, 100]
        assert len(endpoints(h)) == 250
        for s in got:
            assert s.addressType == "IPv4"
            assert s.metadata.labels[MANAGED_BY_LABEL] == MANAGED_BY and s.metadata.labels["tier"] == "front"
            assert s.metadata.name.startswith("web-")
            [ref] = s.metadata.ownerReferences
            assert (ref.kind, ref.uid, ref.controller, ref.blockOwnerDeletion) == ("Service", svc.metadata.uid,
                                                                                  True, True)
            assert [(p.name, p.port, p.protocol) for p in s.ports] == [("http", 8080, "TCP")]


async def test_max_endpoints_per_slice_flag() -> None:
    async with Harness(EndpointSliceController, max_endpoints_per_slice=3) as h:
        await h.create(service())
        await add_pods(h, 7)
        assert sorted(len(s.endpoints) for s in slices(h)) == [1, 3, 3]


async def test_one_pod_changing_rewrites_one_slice() -> None:
    async with Harness(EndpointSliceController) as h:
        await h.create(service())
        await add_pods(h, 250)
        before = {s.metadata.name: s.metadata.resourceVersion for s in slices(h)}
        pods = h.client(core_pb2.Pod, "ns")
        pod = await pods.get("p7")
        set_ready(pod, False)
        await pods.update_status(pod)
        await settle()
        after = {s.metadata.name: s.metadata.resourceVersion for s in slices(h)}
        assert before.keys() == after.keys()
        assert sum(before[n] != after[n] for n in before) == 1
        ep = endpoints(h)["10.0.0.8"]
        assert (ep.conditions.ready, ep.conditions.serving, ep.conditions.terminating) == (False, False, False)


async def test_terminating_pods_stay_marked_terminating() -> None:
    async with Harness(EndpointSliceController) as h:
        await h.create(service())
        pod = running_pod("a", ip="10.0.0.1", labels={"app": "web"})
        pod.metadata.finalizers.append("example.com/hold")
        await h.create(pod)
        await h.client(core_pb2.Pod, "ns").delete("a")
        await settle()
        ep = endpoints(h)["10.0.0.1"]
        assert (ep.conditions.ready, ep.conditions.serving, ep.conditions.terminating) == (False, True, True)
        assert ep.targetRef.name == "a" and ep.nodeName == "node-1"


async def test_publish_not_ready_addresses_makes_every_endpoint_ready() -> None:
    async with Harness(EndpointSliceController) as h:
        await h.create(service(publish=True))
        await h.create(running_pod("a", ip="10.0.0.1", labels={"app": "web"}, ready=False))
        ep = endpoints(h)["10.0.0.1"]
        assert ep.conditions.ready and ep.conditions.serving


async def test_pods_resolving_a_named_port_differently_get_separate_slices() -> None:
    async with Harness(EndpointSliceController) as h:
        await h.create(service(target="http"))
        await h.create(running_pod("a", ip="10.0.0.1", labels={"app": "web"}, ports={"http": 8080}))
        await h.create(running_pod("b", ip="10.0.0.2", labels={"app": "web"}, ports={"http": 9090}))
        by_port = {s.ports[0].port: [e.addresses[0] for e in s.endpoints] for s in slices(h)}
        assert by_port == {8080: ["10.0.0.1"], 9090: ["10.0.0.2"]}


async def test_a_service_without_endpoints_keeps_one_placeholder() -> None:
    async with Harness(EndpointSliceController) as h:
        await h.create(service())
        [placeholder] = slices(h)
        assert not placeholder.endpoints and not placeholder.ports
        await add_pods(h, 2)
        assert [len(s.endpoints) for s in slices(h)] == [2]  # the placeholder was filled, not joined
        for name in ("p0", "p1"):
            await h.client(core_pb2.Pod, "ns").delete(name)
        await settle()
        [placeholder] = slices(h)
        assert not placeholder.endpoints


async def test_slices_go_with_their_service_and_selectorless_services_are_left_alone() -> None:
    async with Harness(EndpointSliceController) as h:
        await h.create(service())
        await add_pods(h, 3)
        assert slices(h)
        await h.client(Service, "ns").delete("web")
        await settle()
        assert not slices(h)
        await h.create(service("manual", selector={}))
        assert not slices(h, "manual")


async def test_a_lagging_slice_cache_creates_no_duplicates() -> None:
    async with Harness(EndpointSliceController) as h:
        h.cs.hold_watches("endpointslices.discovery.k8s.io")
        await h.create(service())
        await add_pods(h, 3)  # each pod re-syncs the Service while the cache shows no slice
        await h.advance(2)
        assert h.cs.count("create", "endpointslices.discovery.k8s.io") == 1
        h.cs.release_watches()
        await h.advance(2)
        assert len(slices(h)) == 1 and len(endpoints(h)) == 3


async def test_a_lowered_limit_splits_existing_slices() -> None:
    h = Harness(EndpointSliceController, max_endpoints_per_slice=10)
    async with h:
        await h.create(service())
        await add_pods(h, 10)
        assert [len(s.endpoints) for s in slices(h)] == [10]
    async with Harness(EndpointSliceController, cs=h.cs, clock=h.clock, max_endpoints_per_slice=4) as again:
        await again.advance(1)
        assert sorted(len(s.endpoints) for s in slices(again)) == [2, 4, 4]
        assert len(endpoints(again)) == 10
