"""controller_manager/daemonset.py (with _daemon_nodes.py, _daemonset_update.py
and _history.py) on the in-memory clientset with a fake clock: one pod per
eligible node, pinned by node affinity and carrying the automatic daemon
tolerations; nodes that come, go, change labels or get taints; failed pods
replaced; RollingUpdate with maxUnavailable and with maxSurge, OnDelete;
ControllerRevisions and the status counters."""

from __future__ import annotations

import asyncio
import contextlib

from api import StatusError, int_or_string
from controller_manager._daemon_nodes import Fit, add_daemon_tolerations, node_fit, target_node, tolerates
from controller_manager._history import HASH_LABEL
from controller_manager._owner import compute_hash
from controller_manager.daemonset import DaemonSetController
from proto import apps_pb2, core_pb2
from tests.support.fakeclient import FakeClientset

from ._workloads import Harness, set_ready, settle, template

Pod = core_pb2.Pod
Node = core_pb2.Node
DS = apps_pb2.DaemonSet


class NodeKubelet:
    """Scheduler and kubelets: a pod is bound to the node its affinity
    names (if that node exists), then Running and Ready unless its node is
    in `slow` (started, not ready); a pod marked for deletion goes."""

    def __init__(self, h: Harness) -> None:
        self.cs: FakeClientset = h.cs
        self.clock = h.clock
        self.slow: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> NodeKubelet:
        self._task = asyncio.create_task(self._run())
        await settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async for event in self.cs.resource(Pod).watch():
            pod = event.object
            if event.type == "DELETED":
                continue
            client = self.cs.resource(Pod, pod.metadata.namespace)
            with contextlib.suppress(StatusError):
                if pod.metadata.deletionTimestamp:
                    await client.delete(pod.metadata.name, grace_period=0)
                elif not pod.spec.nodeName:
                    node = target_node(pod)
                    if any(n.metadata.name == node for n in self.cs.objects(Node)):
                        await client.bind(pod.metadata.name, node)
                elif not pod.status.phase:
                    pod.status.phase = "Running"
                    set_ready(pod, pod.spec.nodeName not in self.slow, self.clock.now())
                    await client.update_status(pod)

    async def make_ready(self, node: str) -> None:
        self.slow.discard(node)
        for pod in self.cs.objects(Pod, "ns"):
            if pod.spec.nodeName == node and pod.status.phase == "Running" and not pod.metadata.deletionTimestamp:
                set_ready(pod, True, self.clock.now())
                await self.cs.resource(Pod, "ns").update_status(pod)


def node(name: str, labels: dict[str, str] | None = None, *, taints: list[tuple[str, str]] | None = None,
         unschedulable: bool = False) -> Node:
    n = Node()
    n.metadata.name = name
    n.metadata.labels.update({"kubernetes.io/hostname": name, **(labels or {})})
    for key, effect in taints or []:
        n.spec.taints.add(key=key, effect=effect)
    n.spec.unschedulable = unschedulable
    return n


def daemon_set(name: str = "agent", *, image: str = "agent:1", strategy: str = "RollingUpdate",
               max_unavailable: int | str = 1, max_surge: int | str = 0,
               node_selector: dict[str, str] | None = None) -> DS:
    ds = DS()
    ds.metadata.name, ds.metadata.namespace = name, "ns"
    ds.spec.selector.matchLabels["app"] = name
    ds.spec.template.CopyFrom(template({"app": name}, image))
    ds.spec.template.spec.nodeSelector.update(node_selector or {})
    ds.spec.updateStrategy.type = strategy
    if strategy == "RollingUpdate":
        ds.spec.updateStrategy.rollingUpdate.maxUnavailable.CopyFrom(int_or_string(max_unavailable))
        ds.spec.updateStrategy.rollingUpdate.maxSurge.CopyFrom(int_or_string(max_surge))
    ds.spec.revisionHistoryLimit = 10
    return ds


def pods_by_node(h: Harness) -> dict[str, list[Pod]]:
    out: dict[str, list[Pod]] = {}
    for pod in h.pods():
        out.setdefault(target_node(pod), []).append(pod)
    return out


async def add_nodes(h: Harness, *nodes: Node) -> None:
    for n in nodes:
        await h.cs.resource(Node).create(n)
    await settle()


async def set_image(h: Harness, image: str, name: str = "agent") -> None:
    ds = h.cs.objects(DS)[0]
    ds.spec.template.spec.containers[0].image = image
    await h.cs.resource(DS, "ns").update(ds)
    await settle()


# ---------------------------------------------------------------- placement


async def test_one_pod_per_node_pinned_with_daemon_tolerations() -> None:
    async with Harness(DaemonSetController) as h, NodeKubelet(h):
        await add_nodes(h, node("n1"), node("n2"), node("n3"))
        ds = await h.cs.resource(DS, "ns").create(daemon_set())
        await settle()
        placed = pods_by_node(h)
        assert sorted(placed) == ["n1", "n2", "n3"] and all(len(p) == 1 for p in placed.values())
        pod = placed["n2"][0]
        assert pod.spec.nodeName == "n2" and pod.metadata.generateName == "agent-"
        term = pod.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]
        assert (term.matchFields[0].key, term.matchFields[0].operator, list(term.matchFields[0].values)) == \
            ("metadata.name", "In", ["n2"])
        tolerated = {(t.key, t.effect) for t in pod.spec.tolerations}
        assert {("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
                ("node.kubernetes.io/unschedulable", "NoSchedule")} <= tolerated
        ref = pod.metadata.ownerReferences[0]
        assert (ref.kind, ref.name, ref.uid, ref.controller) == ("DaemonSet", "agent", ds.metadata.uid, True)

        revisions = h.cs.objects(apps_pb2.ControllerRevision, "ns")
        assert len(revisions) == 1 and revisions[0].revision == 1
        digest = revisions[0].metadata.labels[HASH_LABEL]
        assert revisions[0].metadata.name == f"agent-{digest}"
        assert all(p.metadata.labels[HASH_LABEL] == digest for p in h.pods())
        status = h.cs.objects(DS)[0].status
        assert (status.desiredNumberScheduled, status.currentNumberScheduled, status.numberReady,
                status.numberAvailable, status.updatedNumberScheduled, status.numberMisscheduled,
                status.numberUnavailable, status.observedGeneration) == (3, 3, 3, 3, 3, 0, 0, 1)


async def test_nodes_coming_and_going() -> None:
    async with Harness(DaemonSetController) as h, NodeKubelet(h):
        await add_nodes(h, node("n1"))
        await h.cs.resource(DS, "ns").create(daemon_set())
        await settle()
        assert sorted(pods_by_node(h)) == ["n1"]
        await add_nodes(h, node("n2"), node("n3"))
        assert sorted(pods_by_node(h)) == ["n1", "n2", "n3"]
        await h.cs.resource(Node).delete("n2")
        await settle()
        assert sorted(pods_by_node(h)) == ["n1", "n3"]
        assert h.cs.objects(DS)[0].status.desiredNumberScheduled == 2
        # a pod deleted by hand comes back on its node
        victim = pods_by_node(h)["n3"][0]
        await h.cs.resource(Pod, "ns").delete(victim.metadata.name)
        await settle()
        again = pods_by_node(h)["n3"]
        assert len(again) == 1 and again[0].metadata.uid != victim.metadata.uid


async def test_node_selector_and_labels_changing() -> None:
    async with Harness(DaemonSetController) as h, NodeKubelet(h):
        await add_nodes(h, node("n1", {"disk": "ssd"}), node("n2"))
        await h.cs.resource(DS, "ns").create(daemon_set(node_selector={"disk": "ssd"}))
        await settle()
        assert sorted(pods_by_node(h)) == ["n1"]
        n2 = h.cs.objects(Node)[1]
        n2.metadata.labels["disk"] = "ssd"
        await h.cs.resource(Node).update(n2)
        await settle()
        assert sorted(pods_by_node(h)) == ["n1", "n2"]
        n1 = h.cs.objects(Node)[0]
        del n1.metadata.labels["disk"]
        await h.cs.resource(Node).update(n1)
        await settle()
        assert sorted(pods_by_node(h)) == ["n2"]


async def test_taints_and_tolerations() -> None:
    async with Harness(DaemonSetController) as h, NodeKubelet(h):
        await add_nodes(h, node("plain"), node("dedicated", taints=[("dedicated", "NoSchedule")]),
                        node("notready", taints=[("node.kubernetes.io/not-ready", "NoExecute")]),
                        node("cordoned", unschedulable=True))
        await h.cs.resource(DS, "ns").create(daemon_set())
        await settle()
        # the automatic tolerations cover not-ready and unschedulable, not a user's taint
        assert sorted(pods_by_node(h)) == ["cordoned", "notready", "plain"]
        # a NoSchedule taint added later does not evict; a NoExecute one does
        plain = next(n for n in h.cs.objects(Node) if n.metadata.name == "plain")
        plain.spec.taints.add(key="maintenance", effect="NoSchedule")
        await h.cs.resource(Node).update(plain)
        await settle()
        assert "plain" in pods_by_node(h)
        status = h.cs.objects(DS)[0].status
        assert (status.desiredNumberScheduled, status.numberMisscheduled) == (2, 1)
        plain = next(n for n in h.cs.objects(Node) if n.metadata.name == "plain")
        plain.spec.taints.add(key="maintenance", effect="NoExecute")
        await h.cs.resource(Node).update(plain)
        await settle()
        assert "plain" not in pods_by_node(h)


def test_node_fit_rules() -> None:
    spec = core_pb2.PodSpec()
    add_daemon_tolerations(spec)
    spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.add(
        matchExpressions=[core_pb2.NodeSelectorRequirement(key="zone", operator="In", values=["a", "b"])])
    assert node_fit(spec, node("x", {"zone": "a"})) == Fit(True, True)
    assert node_fit(spec, node("x", {"zone": "c"})) == Fit(False, False)
    assert node_fit(spec, node("x", {"zone": "a"}, taints=[("k", "NoSchedule")])) == Fit(False, True)
    assert node_fit(spec, node("x", {"zone": "a"}, taints=[("k", "NoExecute")])) == Fit(False, False)
    assert node_fit(spec, node("x", {"zone": "a"}, taints=[("k", "PreferNoSchedule")])) == Fit(True, True)
    spec.tolerations.add(key="k", operator="Equal", value="v", effect="NoExecute")
    tainted = node("x", {"zone": "a"})
    tainted.spec.taints.add(key="k", value="v", effect="NoExecute")
    assert node_fit(spec, tainted) == Fit(True, True)
    assert tolerates(core_pb2.Toleration(operator="Exists"), core_pb2.Taint(key="any", effect="NoSchedule"))
    assert not tolerates(core_pb2.Toleration(key="k", value="w"), core_pb2.Taint(key="k", value="v",
                                                                                 effect="NoSchedule"))
    host = core_pb2.PodSpec(hostNetwork=True)
    add_daemon_tolerations(host)
    assert any(t.key == "node.kubernetes.io/network-unavailable" for t in host.tolerations)


async def test_failed_pod_is_replaced() -> None:
    async with Harness(DaemonSetController) as h, NodeKubelet(h):
        await add_nodes(h, node("n1"))
        await h.cs.resource(DS, "ns").create(daemon_set())
        await settle()
        pod = h.pods()[0]
        pod.status.phase = "Failed"
        await h.cs.resource(Pod, "ns").update_status(pod)
        await settle()
        pods = h.pods()
        assert len(pods) == 1 and pods[0].metadata.uid != pod.metadata.uid
        assert h.events("FailedDaemonPod")


# ---------------------------------------------------------------- updates


async def test_rolling_update_respects_max_unavailable() -> None:
    async with Harness(DaemonSetController) as h, NodeKubelet(h) as kubelet:
        await add_nodes(h, *(node(f"n{i}") for i in range(4)))
        await h.cs.resource(DS, "ns").create(daemon_set(max_unavailable=2))
        await settle()
        old = h.cs.objects(apps_pb2.ControllerRevision, "ns")[0].metadata.labels[HASH_LABEL]
        kubelet.slow = {f"n{i}" for i in range(4)}  # new pods start not ready
        await set_image(h, "agent:2")
        revisions = h.cs.objects(apps_pb2.ControllerRevision, "ns")
        assert sorted(r.revision for r in revisions) == [1, 2]
        new = next(r for r in revisions if r.revision == 2).metadata.labels[HASH_LABEL]
        # two nodes at a time lose their available pod, never more
        updated = [n for n, pods in pods_by_node(h).items() if pods[0].metadata.labels[HASH_LABEL] == new]
        assert len(updated) == 2
        await h.advance(5)
        assert len([n for n, pods in pods_by_node(h).items() if pods[0].metadata.labels[HASH_LABEL] == new]) == 2
        for name in updated:
            await kubelet.make_ready(name)
        await settle()
        assert sum(1 for pods in pods_by_node(h).values() if pods[0].metadata.labels[HASH_LABEL] == new) == 4
        for i in range(4):
            await kubelet.make_ready(f"n{i}")
        await settle()
        assert all(p.metadata.labels[HASH_LABEL] == new for p in h.pods()) and len(h.pods()) == 4
        assert old != new
        status = h.cs.objects(DS)[0].status
        assert (status.updatedNumberScheduled, status.numberAvailable) == (4, 4)


async def test_surge_update_starts_the_new_pod_first() -> None:
    async with Harness(DaemonSetController) as h, NodeKubelet(h) as kubelet:
        await add_nodes(h, node("n1"), node("n2"))
        await h.cs.resource(DS, "ns").create(daemon_set(max_unavailable=0, max_surge=1))
        await settle()
        kubelet.slow = {"n1", "n2"}
        await set_image(h, "agent:2")
        placed = pods_by_node(h)
        surged = [n for n, pods in placed.items() if len(pods) == 2]
        assert len(surged) == 1  # one extra pod at a time, next to the old one
        await kubelet.make_ready(surged[0])
        await settle()
        placed = pods_by_node(h)
        assert len(placed[surged[0]]) == 1  # the old one went once the new one was available
        other = next(n for n in placed if n != surged[0])
        assert len(placed[other]) == 2
        await kubelet.make_ready(other)
        await settle()
        assert all(len(p) == 1 for p in pods_by_node(h).values())
        assert h.cs.objects(DS)[0].status.updatedNumberScheduled == 2


async def test_on_delete_updates_only_deleted_pods() -> None:
    async with Harness(DaemonSetController) as h, NodeKubelet(h):
        await add_nodes(h, node("n1"), node("n2"))
        await h.cs.resource(DS, "ns").create(daemon_set(strategy="OnDelete"))
        await settle()
        before = {p.metadata.uid for p in h.pods()}
        await set_image(h, "agent:2")
        await h.advance(30)
        assert {p.metadata.uid for p in h.pods()} == before
        victim = pods_by_node(h)["n1"][0]
        await h.cs.resource(Pod, "ns").delete(victim.metadata.name)
        await settle()
        fresh = pods_by_node(h)["n1"][0]
        assert fresh.spec.containers[0].image == "agent:2"
        assert pods_by_node(h)["n2"][0].spec.containers[0].image == "agent:1"
        assert h.cs.objects(DS)[0].status.updatedNumberScheduled == 1


async def test_history_is_truncated_and_rollback_reuses_a_revision() -> None:
    async with Harness(DaemonSetController) as h, NodeKubelet(h):
        await add_nodes(h, node("n1"))
        ds = daemon_set()
        ds.spec.revisionHistoryLimit = 1
        await h.cs.resource(DS, "ns").create(ds)
        await settle()
        for image in ("agent:2", "agent:3"):
            await set_image(h, image)
        revisions = sorted(h.cs.objects(apps_pb2.ControllerRevision, "ns"), key=lambda r: r.revision)
        # agent:1 is no pod's and beyond the limit of one old revision
        assert [r.revision for r in revisions] == [2, 3]
        await set_image(h, "agent:2")
        revisions = sorted(h.cs.objects(apps_pb2.ControllerRevision, "ns"), key=lambda r: r.revision)
        assert [r.revision for r in revisions] == [3, 4]  # agent:2's revision became the newest
        assert h.pods()[0].spec.containers[0].image == "agent:2"


async def test_hash_collision_bumps_the_collision_count() -> None:
    async with Harness(DaemonSetController) as h, NodeKubelet(h):
        await add_nodes(h, node("n1"))
        ds = daemon_set()
        squatter = apps_pb2.ControllerRevision(revision=1)
        squatter.metadata.name, squatter.metadata.namespace = f"agent-{compute_hash(ds.spec.template)}", "ns"
        squatter.data.update({"spec": {"template": {"something": "else"}}})
        await h.cs.resource(apps_pb2.ControllerRevision, "ns").create(squatter)
        await h.cs.resource(DS, "ns").create(ds)
        await h.advance(1)
        stored = h.cs.objects(DS)[0]
        assert stored.status.collisionCount == 1
        ours = [r for r in h.cs.objects(apps_pb2.ControllerRevision, "ns") if r.metadata.ownerReferences]
        assert len(ours) == 1 and ours[0].metadata.name == f"agent-{compute_hash(ds.spec.template, 1)}"
        assert h.pods()[0].metadata.labels[HASH_LABEL] == compute_hash(ds.spec.template, 1)
