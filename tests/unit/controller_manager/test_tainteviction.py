"""controller_manager/tainteviction.py on the in-memory clientset with a
fake clock: toleration matching, a pod that does not tolerate a NoExecute
taint is evicted at once (DisruptionTarget condition, graceful delete,
event), one that tolerates it for N seconds after N seconds and not
before, one that tolerates it forever stays, and a taint removed in time
saves the pod."""

from __future__ import annotations

from controller_manager.nodelifecycle import UNREACHABLE
from controller_manager.tainteviction import TaintEvictionController, tolerates, toleration_seconds
from proto import core_pb2
from tests.support.fakeclient import pod_grace

from ._cluster import Harness, meta, running_pod, settle

Node = core_pb2.Node
Pod = core_pb2.Pod
Taint = core_pb2.Taint
Toleration = core_pb2.Toleration


def pod(name: str, seconds: int | None = None, *, forever: bool = False) -> Pod:
    p = running_pod(name, node="n1")
    if seconds is not None:
        p.spec.tolerations.add(key=UNREACHABLE, operator="Exists", effect="NoExecute", tolerationSeconds=seconds)
    if forever:
        p.spec.tolerations.add(key=UNREACHABLE, operator="Exists", effect="NoExecute")
    return p


async def taint(h: Harness, *taints: Taint) -> None:
    node = await h.client(Node).get("n1")
    del node.spec.taints[:]
    node.spec.taints.extend(taints)
    await h.client(Node).update(node)
    await settle()


def marked(h: Harness, name: str) -> bool:
    p = h.get(Pod, "ns", name)
    return p is None or bool(p.metadata.deletionTimestamp)


def test_tolerates() -> None:
    t = Taint(key="k", value="v", effect="NoExecute")
    assert tolerates(Toleration(key="k", operator="Equal", value="v", effect="NoExecute"), t)
    assert tolerates(Toleration(key="k", value="v"), t)
    assert not tolerates(Toleration(key="k", value="w"), t)
    assert tolerates(Toleration(operator="Exists"), t)
    assert not tolerates(Toleration(key="k", operator="Exists", effect="NoSchedule"), t)
    assert not tolerates(Toleration(key="other", operator="Exists"), t)


def test_toleration_seconds_is_the_least_of_the_matching_ones() -> None:
    taints = [Taint(key="a", effect="NoExecute"), Taint(key="b", effect="NoExecute")]
    both = [Toleration(key="a", operator="Exists", tolerationSeconds=30),
            Toleration(key="b", operator="Exists", tolerationSeconds=10)]
    assert toleration_seconds(both, taints) == 10
    assert toleration_seconds(both[:1], taints) == 0  # b is not tolerated at all
    assert toleration_seconds([Toleration(operator="Exists")], taints) is None


async def test_pods_are_evicted_when_their_toleration_runs_out() -> None:
    async with Harness(TaintEvictionController) as h:
        h.cs.graceful = pod_grace
        await h.client(Node).create(meta(Node(), "n1"))
        for p in (pod("intolerant"), pod("patient", 300), pod("forever", forever=True)):
            await h.client(Pod, "ns").create(p)
        await h.client(Pod, "ns").create(running_pod("elsewhere", node="n2"))
        await settle()
        await taint(h, Taint(key=UNREACHABLE, effect="NoExecute", timeAdded="2023-11-14T22:13:20Z"),
                    Taint(key=UNREACHABLE, effect="NoSchedule"))
        assert marked(h, "intolerant") and not marked(h, "patient") and not marked(h, "forever")
        evicted = h.get(Pod, "ns", "intolerant")
        assert evicted is not None
        [cond] = [c for c in evicted.status.conditions if c.type == "DisruptionTarget"]
        assert (cond.status, cond.reason) == ("True", "DeletionByTaintManager")
        assert evicted.metadata.deletionGracePeriodSeconds == 30  # graceful, like any eviction
        assert h.events("TaintManagerEviction")

        await h.advance(299, tick=1)
        assert not marked(h, "patient")
        await h.advance(2, tick=1)
        assert marked(h, "patient") and not marked(h, "forever") and not marked(h, "elsewhere")


async def test_a_taint_removed_in_time_saves_the_pod() -> None:
    async with Harness(TaintEvictionController) as h:
        await h.client(Node).create(meta(Node(), "n1"))
        await h.create(pod("patient", 60))
        await taint(h, Taint(key=UNREACHABLE, effect="NoExecute"))
        await h.advance(30, tick=1)
        await taint(h)
        await h.advance(60, tick=1)
        assert not marked(h, "patient")
        # Tainted again: the clock starts afresh.
        await taint(h, Taint(key=UNREACHABLE, effect="NoExecute"))
        await h.advance(59, tick=1)
        assert not marked(h, "patient")
        await h.advance(2, tick=1)
        assert marked(h, "patient")
