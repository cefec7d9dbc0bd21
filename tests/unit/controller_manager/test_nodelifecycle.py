"""controller_manager/nodelifecycle.py on the in-memory clientset with a
fake clock: a node whose Lease stops being renewed goes Unknown after the
grace period, gets the unreachable NoSchedule and NoExecute taints and its
pods are marked not ready; a kubelet reporting NotReady gets the not-ready
taints; a returning node loses them; a node that never reported counts
from its creation with the startup grace; NoExecute tainting is
rate-limited per zone, stops in a small partly-down zone, and stops
altogether when every node is down."""

from __future__ import annotations

from api import rfc3339, rfc3339_micro
from controller_manager.nodelifecycle import (
    FULL,
    LEASE_NAMESPACE,
    NORMAL,
    NOT_READY,
    PARTIAL,
    UNREACHABLE,
    NodeLifecycleController,
    zone_state,
)
from proto import coordination_pb2, core_pb2

from ._cluster import Harness, meta, running_pod, settle

Node = core_pb2.Node
Lease = coordination_pb2.Lease


def node(name: str, zone: str = "a", *, ready: str | None = "True") -> Node:
    n = meta(Node(), name, **{"topology.kubernetes.io/zone": zone})
    if ready is not None:
        n.status.conditions.add(type="Ready", status=ready, reason="KubeletReady")
        n.status.conditions.add(type="MemoryPressure", status="False")
    return n


async def start_nodes(h: Harness, names: list[str], zone: str = "a") -> None:
    for name in names:
        await h.client(Node).create(node(name, zone))
        lease = meta(Lease(), name, LEASE_NAMESPACE)
        lease.spec.holderIdentity = name
        lease.spec.renewTime = rfc3339_micro(h.clock.now())
        await h.client(Lease, LEASE_NAMESPACE).create(lease)
    await settle()


async def renew(h: Harness, names: set[str]) -> None:
    leases = h.client(Lease, LEASE_NAMESPACE)
    for name in sorted(names):
        lease = await leases.get(name)
        lease.spec.renewTime = rfc3339_micro(h.clock.now())
        await leases.update(lease)


async def run_for(h: Harness, seconds: float, alive: set[str]) -> None:
    """Let time pass with the `alive` kubelets renewing every 10 s."""
    for _ in range(int(seconds)):
        if int(h.clock.now()) % 10 == 0:
            await renew(h, alive)
        await h.advance(1, tick=1)


def taints(h: Harness, name: str) -> set[tuple[str, str]]:
    got = h.get(Node, "", name)
    assert got is not None
    return {(t.key, t.effect) for t in got.spec.taints}


def ready(h: Harness, name: str) -> str:
    got = h.get(Node, "", name)
    assert got is not None
    return next(c.status for c in got.status.conditions if c.type == "Ready")


async def test_a_silent_node_goes_unknown_and_is_tainted_and_a_returning_one_is_not() -> None:
    async with Harness(NodeLifecycleController) as h:
        names = ["n1", "n2", "n3"]
        await start_nodes(h, names)
        pod = running_pod("p", node="n3")
        pod.status.conditions.add(type="ContainersReady", status="True")
        await h.create(pod)
        await run_for(h, 30, set(names))
        assert [ready(h, n) for n in names] == ["True"] * 3 and not taints(h, "n3")

        await run_for(h, 45, {"n1", "n2"})
        assert ready(h, "n3") == "Unknown" and ready(h, "n1") == "True"
        assert taints(h, "n3") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
        stored = h.get(Node, "", "n3")
        assert stored is not None
        assert all(c.status == "Unknown" and c.reason == "NodeStatusUnknown" for c in stored.status.conditions)
        assert all(t.timeAdded for t in stored.spec.taints if t.effect == "NoExecute")
        p = h.get(core_pb2.Pod, "ns", "p")
        assert p is not None
        assert {c.type: c.status for c in p.status.conditions} == {"Ready": "False", "ContainersReady": "False"}
        assert h.events("NodeNotReady")

        # The kubelet is back: its lease and its Ready status.
        await renew(h, {"n3"})
        back = await h.client(Node).get("n3")
        for c in back.status.conditions:
            c.status, c.lastHeartbeatTime = ("True" if c.type == "Ready" else "False"), rfc3339(h.clock.now())
        await h.client(Node).update_status(back)
        await run_for(h, 6, set(names))
        assert ready(h, "n3") == "True" and not taints(h, "n3")


async def test_a_node_the_kubelet_reports_not_ready_gets_the_not_ready_taints() -> None:
    async with Harness(NodeLifecycleController) as h:
        await start_nodes(h, ["n1", "n2", "n3"])
        sick = await h.client(Node).get("n2")
        next(c for c in sick.status.conditions if c.type == "Ready").status = "False"
        await h.client(Node).update_status(sick)
        await run_for(h, 6, {"n1", "n2", "n3"})
        assert taints(h, "n2") == {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}
        assert ready(h, "n2") == "False"  # the kubelet's word stands
        # It falls silent too: the taint becomes unreachable.
        await run_for(h, 50, {"n1", "n3"})
        assert taints(h, "n2") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}


async def test_a_node_that_never_reported_gets_the_startup_grace() -> None:
    async with Harness(NodeLifecycleController, node_startup_grace_period=60.0) as h:
        await start_nodes(h, ["n1", "n2"])
        await h.client(Node).create(node("new", ready=None))
        await run_for(h, 50, {"n1", "n2"})
        got = h.get(Node, "", "new")
        assert got is not None and not got.status.conditions
        await run_for(h, 15, {"n1", "n2"})
        got = h.get(Node, "", "new")
        assert got is not None
        [cond] = [c for c in got.status.conditions if c.type == "Ready"]
        assert (cond.status, cond.reason) == ("Unknown", "NodeStatusNeverUpdated")
        assert (UNREACHABLE, "NoSchedule") in taints(h, "new")


async def test_no_execute_tainting_is_rate_limited_per_zone() -> None:
    async with Harness(NodeLifecycleController, node_eviction_rate=0.1) as h:
        names = [f"n{i}" for i in range(10)]
        await start_nodes(h, names)
        healthy = set(names[3:])
        await run_for(h, 45, healthy)
        noexec = [n for n in names[:3] if (UNREACHABLE, "NoExecute") in taints(h, n)]
        assert all((UNREACHABLE, "NoSchedule") in taints(h, n) for n in names[:3])  # NoSchedule at once
        assert len(noexec) == 1
        await run_for(h, 10, healthy)
        assert sum((UNREACHABLE, "NoExecute") in taints(h, n) for n in names[:3]) == 2
        await run_for(h, 10, healthy)
        assert sum((UNREACHABLE, "NoExecute") in taints(h, n) for n in names[:3]) == 3


async def test_a_small_partly_down_zone_gets_no_evictions() -> None:
    async with Harness(NodeLifecycleController) as h:
        await start_nodes(h, [f"a{i}" for i in range(5)], zone="a")
        await start_nodes(h, ["b0"], zone="b")
        await run_for(h, 60, {"a3", "a4", "b0"})
        for name in ("a0", "a1", "a2"):
            assert taints(h, name) == {(UNREACHABLE, "NoSchedule")}


async def test_when_every_node_is_down_nothing_is_evicted_until_one_returns() -> None:
    async with Harness(NodeLifecycleController) as h:
        await start_nodes(h, ["n1", "n2"])
        await run_for(h, 60, set())
        assert taints(h, "n1") == taints(h, "n2") == {(UNREACHABLE, "NoSchedule")}
        await renew(h, {"n1"})
        back = await h.client(Node).get("n1")
        next(c for c in back.status.conditions if c.type == "Ready").status = "True"
        await h.client(Node).update_status(back)
        await run_for(h, 11, {"n1"})
        assert taints(h, "n1") == set()
        assert taints(h, "n2") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}


def test_zone_states() -> None:
    assert zone_state(3, 0, 0.55) == NORMAL
    assert zone_state(0, 2, 0.55) == FULL
    assert zone_state(1, 2, 0.55) == NORMAL  # two down is not a disruption
    assert zone_state(2, 3, 0.55) == PARTIAL
    assert zone_state(10, 3, 0.55) == NORMAL
