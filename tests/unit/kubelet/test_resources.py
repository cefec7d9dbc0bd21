"""Requests and limits: the QoS class, the cgroup settings handed to the
runtime, and node-pressure eviction order (BestEffort, then Burstable,
then Guaranteed)."""

from __future__ import annotations

import pytest

from kubelet._config import parse_eviction_hard
from kubelet._qos import BEST_EFFORT, BURSTABLE, GUARANTEED, qos_class
from proto import core_pb2
from tests.unit.kubelet._harness import HollowNode, container, make_pod


def _res(requests: dict[str, str] | None = None, limits: dict[str, str] | None = None) -> core_pb2.Container:
    c = container("c")
    for name, value in (requests or {}).items():
        c.resources.requests[name].value = value
    for name, value in (limits or {}).items():
        c.resources.limits[name].value = value
    return c


def test_qos_classes() -> None:
    assert qos_class(make_pod("p", _res())) == BEST_EFFORT
    assert qos_class(make_pod("p", _res({"cpu": "100m"}))) == BURSTABLE
    full = {"cpu": "500m", "memory": "64Mi"}
    assert qos_class(make_pod("p", _res(full, full))) == GUARANTEED
    assert qos_class(make_pod("p", _res(limits=full))) == GUARANTEED  # requests default to limits
    assert qos_class(make_pod("p", _res({"cpu": "250m", "memory": "64Mi"}, full))) == BURSTABLE
    assert qos_class(make_pod("p", _res(full, full), _res())) == BURSTABLE


async def test_cgroup_settings_from_requests_and_limits() -> None:
    async with HollowNode() as node:
        c = _res({"cpu": "250m", "memory": "64Mi"}, {"cpu": "500m", "memory": "128Mi"})
        await node.create(make_pod("p", c))
        await node.advance(2)
        res = next(iter(node.runtime.containers.values())).status.resources
        assert res.cpu_shares == 256
        assert res.cpu_period == 100_000 and res.cpu_quota == 50_000
        assert res.memory_limit_in_bytes == 128 * 1024 * 1024
        assert 2 <= res.oom_score_adj <= 999
        assert node.status("p").qosClass == "Burstable"


def test_eviction_thresholds_parse_and_reject() -> None:
    ts = parse_eviction_hard("memory.available<100Mi,nodefs.available<10%")
    assert ts[0].limit(10**9) == 100 * 1024**2 and ts[1].limit(1000) == 100
    for bad, why in (("memory.free<1Gi", "unsupported signal"), ("memory.available>1Gi", "want SIGNAL<"),
                     ("nodefs.available<200%", "percentage"), ("memory.available<lots", "quantities must")):
        with pytest.raises(ValueError, match=why):
            parse_eviction_hard(bad)


async def test_memory_pressure_evicts_the_best_effort_pod_using_most() -> None:
    async with HollowNode(memory="1Gi", eviction_hard=parse_eviction_hard("memory.available<200Mi")) as node:
        full = {"cpu": "100m", "memory": "100Mi"}
        await node.create(make_pod("guaranteed", _res(full, full)))
        await node.create(make_pod("burstable", _res({"memory": "50Mi"})))
        await node.create(make_pod("besteffort-small", _res()))
        await node.create(make_pod("besteffort-big", _res()))
        node.runtime.script("c", "guaranteed").memory_bytes = 100 * 1024**2
        node.runtime.script("c", "burstable").memory_bytes = 300 * 1024**2
        node.runtime.script("c", "besteffort-small").memory_bytes = 100 * 1024**2
        node.runtime.script("c", "besteffort-big").memory_bytes = 400 * 1024**2  # 900Mi used, 124Mi left
        await node.advance(11)
        order = []
        for _ in range(4):
            evicted = [p.metadata.name for p in node.cs.objects(core_pb2.Pod, "ns") if p.status.reason == "Evicted"]
            order += [name for name in evicted if name not in order]
            await node.advance(10)
        assert order == ["besteffort-big"]  # the BestEffort pod using most; then 524Mi are available
        status = node.status("besteffort-big")
        assert status.phase == "Failed" and "low on resource: memory" in status.message
        assert node.events("Evicted")
        assert not node.runtime.running("besteffort-big")
        assert node.pod("besteffort-big") is not None  # an evicted pod stays, Failed
        pressure = next(c for c in node.node().status.conditions if c.type == "MemoryPressure")
        assert pressure.status == "False"


async def test_burstable_before_guaranteed() -> None:
    async with HollowNode(memory="1Gi", eviction_hard=parse_eviction_hard("memory.available<600Mi")) as node:
        full = {"cpu": "100m", "memory": "100Mi"}
        await node.create(make_pod("guaranteed", _res(full, full)))
        await node.create(make_pod("burstable", _res({"memory": "50Mi"})))
        node.runtime.script("c", "guaranteed").memory_bytes = 500 * 1024**2
        node.runtime.script("c", "burstable").memory_bytes = 100 * 1024**2
        await node.advance(11)
        assert node.status("burstable").reason == "Evicted"
        assert not node.status("guaranteed").reason
        assert node.agent is not None and node.agent.eviction.pressure == {"MemoryPressure"}
        await node.agent.node.update_status()
        pressure = next(c for c in node.node().status.conditions if c.type == "MemoryPressure")
        assert pressure.status == "True" and pressure.reason == "KubeletHasInsufficientMemory"
        await node.advance(10)  # 524Mi available: still under 600Mi
        assert node.status("guaranteed").reason == "Evicted"
        await node.advance(10)
        assert not node.agent.eviction.pressure
